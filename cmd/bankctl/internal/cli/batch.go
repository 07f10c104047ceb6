package cli

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zkbank/zkbank/cmd/internal/client"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
)

// batchChunk is how many commands go in one request (the API's limit).
const batchChunk = 1000

// badLinesShown bounds how many refused lines a batch lists.
const badLinesShown = 20

const batchLong = `Submit a file of commands, one JSON object per line, in order, in requests
of up to 1000 commands, with a progress bar on stderr. Each line is a batch
command; blank lines and lines starting with # are skipped.

Every line is checked before anything is sent: a file with a bad line is
refused whole (exit 2), naming each bad line by its number and the API's
code. Each line gets its own idempotency key, kept across retries and
reruns: by default derived from the file's content and the line number
(b-<hash>-<line>), or PREFIX-<line> with --key PREFIX, unless the line
gives its own "key". So running the same file again replays it instead of
applying it twice: after a crash, or an "outcome unknown" (exit 4), just
run the same command again. A file meant to run again as new (a monthly
payroll) needs --new-keys. The cluster remembers keys for ` + keyMemory + `;
a rerun after that applies again.

Prints a summary by outcome and the lines that were rejected; exits 3 when
any was.`

// keyMemory says how long the cluster remembers idempotency keys.
const keyMemory = "24 hours of the log's time, whatever the load (from body version 6, once every node runs a bankd that reads it; before, 100,000 log entries and at most 500,000 keys: docs/operations.md, Limits)"

func (a *app) batchCommand() *cobra.Command {
	var prefix string
	var newKeys bool
	cmd := &cobra.Command{
		Use:   "batch FILE",
		Short: "Submit a file of commands (JSON lines; - for stdin) through the batch API",
		Long:  batchLong,
		Example: `  cat > pay.jsonl <<'E'
  {"op":"create_account","account":"1001","name":"Ada","balance":500}
  {"op":"transfer","from":"1001","to":"1002","amount":250}
  {"op":"deposit","account":"1002","amount":100,"key":"my-key-1"}
  E
  bankctl batch pay.jsonl                      # a rerun replays: nothing applies twice
  bankctl batch --new-keys payroll.jsonl       # this month's run of last month's file
  bankctl batch --key run-2026-12 payroll.jsonl`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if newKeys && prefix != "" {
				return usageError{errors.New("give --key PREFIX or --new-keys, not both")}
			}
			lines, content, err := a.readBatch(args[0])
			if err != nil {
				return err
			}
			switch {
			case newKeys:
				prefix = "b-" + client.NewKey()[4:16]
			case prefix == "":
				sum := sha256.Sum256(content)
				prefix = "b-" + hex.EncodeToString(sum[:6])
			case len(prefix) > engine.KeyLenMax-8 || !engine.ValidKey(prefix):
				return usageError{fmt.Errorf("--key %q: use up to %d visible ASCII characters", prefix, engine.KeyLenMax-8)}
			}
			cmds, err := checkBatch(args[0], lines, prefix)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "keys: %s-<line> (a rerun of this file replays it; --new-keys runs it as new)\n", prefix)
			return a.submitBatch(cmds)
		},
	}
	cmd.Flags().StringVar(&prefix, "key", "", "key prefix: line N gets PREFIX-N (default: from the file's content)")
	cmd.Flags().BoolVar(&newKeys, "new-keys", false, "fresh keys: run a file that ran before as new commands")
	return cmd
}

// batchLine is one command of a batch file and its line number.
type batchLine struct {
	line int
	text []byte
}

// readBatch reads the file's command lines and its whole content.
func (a *app) readBatch(path string) ([]batchLine, []byte, error) {
	var r io.Reader = a.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, err
		}
		defer f.Close()
		r = f
	}
	var lines []batchLine
	var content bytes.Buffer
	sc := bufio.NewScanner(io.TeeReader(r, &content))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) > 0 && text[0] != '#' {
			lines = append(lines, batchLine{line: n, text: bytes.Clone(text)})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(lines) == 0 {
		return nil, nil, usageError{fmt.Errorf("%s holds no commands", path)}
	}
	return lines, content.Bytes(), nil
}

// keyedCommand is a checked batch command with its line.
type keyedCommand struct {
	line int
	cmd  wire.Command
}

// checkBatch decodes and checks every line as the API would, giving each
// its key; any bad line refuses the whole file.
func checkBatch(path string, lines []batchLine, prefix string) ([]keyedCommand, error) {
	var out []keyedCommand
	var bad []string
	for _, l := range lines {
		c, p := checkLine(l, prefix)
		if p != nil {
			if len(bad) < badLinesShown {
				bad = append(bad, fmt.Sprintf("  line %d: %s: %s", l.line, p.Code, p.Detail))
			}
			continue
		}
		out = append(out, keyedCommand{line: l.line, cmd: c})
	}
	if n := len(lines) - len(out); n > 0 {
		return nil, usageError{fmt.Errorf("%s: %d bad lines; nothing was sent:\n%s", path, n, strings.Join(bad, "\n"))}
	}
	return out, nil
}

func checkLine(l batchLine, prefix string) (wire.Command, *wire.Problem) {
	var c wire.Command
	if p := wire.DecodeStrict(l.text, &c); p != nil {
		return c, p
	}
	if c.Key == "" {
		c.Key = fmt.Sprintf("%s-%d", prefix, l.line)
	}
	ec, err := c.ToEngine()
	if err != nil {
		return c, wire.NewProblem(wire.CodeInvalidOp, err.Error())
	}
	if code := ec.Check(); code != engine.CodeOK {
		return c, wire.NewProblem(code.String(), wire.Describe(ec, code))
	}
	return c, nil
}

type rejection struct {
	Line int    `json:"line"`
	Code string `json:"code"`
}

type batchSummary struct {
	Commands  int            `json:"commands"`
	Outcomes  map[string]int `json:"outcomes"`
	Replayed  int            `json:"replayed"`
	Rejected  []rejection    `json:"rejected"`
	LastIndex uint64         `json:"last_index"`
}

func (a *app) submitBatch(cmds []keyedCommand) error {
	c, err := a.api()
	if err != nil {
		return err
	}
	sum := batchSummary{Commands: len(cmds), Outcomes: map[string]int{}, Rejected: []rejection{}}
	bar := newProgress(a.stderr, "batch", len(cmds))
	for start := 0; start < len(cmds); start += batchChunk {
		chunk := cmds[start:min(start+batchChunk, len(cmds))]
		body := wire.Batch{Commands: make([]wire.Command, len(chunk))}
		for i, kc := range chunk {
			body.Commands[i] = kc.cmd
		}
		var res wire.BatchResult
		ctx, cancel := a.ctx()
		_, err := c.Do(ctx, "POST", "/v1/batch", body, client.NewKey(), &res)
		cancel()
		if err != nil {
			return batchFailed(chunk[0].line, start, err)
		}
		for i, r := range res.Results {
			sum.Outcomes[r.Code]++
			if r.Replayed {
				sum.Replayed++
			}
			if r.Code != "ok" {
				sum.Rejected = append(sum.Rejected, rejection{Line: chunk[i].line, Code: r.Code})
			}
		}
		sum.LastIndex = res.Index
		bar.update(start + len(chunk))
	}
	if err := a.showSummary(sum); err != nil {
		return err
	}
	if len(sum.Rejected) > 0 {
		return &wire.Problem{Status: 409, Code: "rejected", Detail: fmt.Sprintf("%d of %d commands were rejected", len(sum.Rejected), sum.Commands)}
	}
	return nil
}

// batchFailed says what a failed request means for the file: the lines
// before it were applied; from it on, applied or not (outcome unknown), or
// not (unavailable); in both cases the same command again finishes the
// job, replaying what was applied.
func batchFailed(line, done int, err error) error {
	if errors.Is(err, client.ErrOutcomeUnknown) {
		return fmt.Errorf("%w: the commands from line %d on may or may not have been applied (the %d before were); run the same command again to finish: each line's key makes that a replay, not a repeat", client.ErrOutcomeUnknown, line, done)
	}
	return fmt.Errorf("the commands from line %d on were not applied (the %d before were); run the same command again to finish: %w", line, done, err)
}

func (a *app) showSummary(sum batchSummary) error {
	if done, err := a.showJSON(sum); done {
		return err
	}
	var rows [][]string
	codes := make([]string, 0, len(sum.Outcomes))
	for code := range sum.Outcomes {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	for _, code := range codes {
		rows = append(rows, []string{code, fmt.Sprint(sum.Outcomes[code])})
	}
	table(a.stdout, []string{"OUTCOME", "COMMANDS"}, rows)
	if sum.Replayed > 0 {
		fmt.Fprintf(a.stdout, "%d of them were replays of earlier runs (nothing changed for those)\n", sum.Replayed)
	}
	for _, r := range sum.Rejected {
		fmt.Fprintf(a.stdout, "line %d: %s\n", r.Line, r.Code)
	}
	return nil
}
