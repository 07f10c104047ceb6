package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/spf13/cobra"

	"github.com/zkbank/zkbank/cmd/bankctl/internal/client"
	"github.com/zkbank/zkbank/cmd/internal/wire"
)

// batchChunk is how many commands go in one request (the API's limit).
const batchChunk = 1000

func (a *app) batchCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "batch FILE",
		Short: "Submit a file of commands (JSON lines; - for stdin) through the batch API",
		Long: `Submit a file of commands, one JSON object per line, in order, in requests
of up to 1000 commands, with a progress bar on stderr. Each line is a batch
command, e.g.

  {"op":"create_account","account":"1001","name":"Ada","balance":500}
  {"op":"transfer","from":"1001","to":"1002","amount":250}
  {"op":"deposit","account":"1002","amount":100,"key":"my-key-1"}

Lines without a key get one derived from a random per-request key, kept
across retries. Prints a summary by outcome and the lines that were
rejected; exits 3 when any was.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cmds, err := a.readCommands(args[0])
			if err != nil {
				return err
			}
			return a.submitBatch(cmds)
		},
	}
}

func (a *app) readCommands(path string) ([]wire.Command, error) {
	var r io.Reader = a.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var cmds []wire.Command
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 || text[0] == '#' {
			cmds = append(cmds, wire.Command{}) // keeps line numbers; skipped when sent
			continue
		}
		var c wire.Command
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, usageError{fmt.Errorf("%s line %d: %w", path, line, err)}
		}
		cmds = append(cmds, c)
	}
	return cmds, sc.Err()
}

type rejection struct {
	Line int    `json:"line"`
	Code string `json:"code"`
}

type batchSummary struct {
	Commands  int            `json:"commands"`
	Outcomes  map[string]int `json:"outcomes"`
	Rejected  []rejection    `json:"rejected,omitempty"`
	LastIndex uint64         `json:"last_index"`
}

func (a *app) submitBatch(all []wire.Command) error {
	c, err := a.api()
	if err != nil {
		return err
	}
	var lines []int
	var cmds []wire.Command
	for i, cmd := range all {
		if cmd.Op != "" {
			cmds, lines = append(cmds, cmd), append(lines, i+1)
		}
	}
	sum := batchSummary{Commands: len(cmds), Outcomes: map[string]int{}}
	bar := newProgress(a.stderr, "batch", len(cmds))
	for start := 0; start < len(cmds); start += batchChunk {
		end := min(start+batchChunk, len(cmds))
		var res wire.BatchResult
		ctx, cancel := a.ctx()
		_, err := c.Do(ctx, "POST", "/v1/batch", wire.Batch{Commands: cmds[start:end]}, client.NewKey(), &res)
		cancel()
		if err != nil {
			return fmt.Errorf("commands from line %d on were not submitted (the ones before were): %w", lines[start], err)
		}
		for i, r := range res.Results {
			sum.Outcomes[r.Code]++
			if r.Code != "ok" {
				sum.Rejected = append(sum.Rejected, rejection{Line: lines[start+i], Code: r.Code})
			}
		}
		sum.LastIndex = res.Index
		bar.update(end)
	}
	if err := a.showSummary(sum); err != nil {
		return err
	}
	if len(sum.Rejected) > 0 {
		return &wire.Problem{Status: 409, Code: "rejected", Detail: fmt.Sprintf("%d of %d commands were rejected", len(sum.Rejected), sum.Commands)}
	}
	return nil
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
	for _, r := range sum.Rejected {
		fmt.Fprintf(a.stdout, "line %d: %s\n", r.Line, r.Code)
	}
	return nil
}
