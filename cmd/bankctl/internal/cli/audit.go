package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zkbank/zkbank/cmd/internal/audit"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
)

func (a *app) journalCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "journal", Short: "Audit a node's journal offline (on a data dir or a copy)"}
	cmd.AddCommand(a.journalReplay(), a.journalDump(), a.journalHistory())
	return cmd
}

func dataDirFlag(cmd *cobra.Command, dir *string) {
	cmd.Flags().StringVar(dir, "data-dir", "", "a bankd data dir (stop the node or audit a copy)")
	cmd.MarkFlagRequired("data-dir")
}

type replayOutput struct {
	DataDir      string                `json:"data_dir"`
	From         uint64                `json:"from_snapshot"`
	Index        uint64                `json:"index"`
	StateHash    string                `json:"state_hash"`
	Accounts     uint64                `json:"accounts"`
	TotalBalance uint64                `json:"total_balance"`
	Entries      uint64                `json:"entries"`
	Commands     uint64                `json:"commands"`
	Outcomes     map[string]uint64     `json:"outcomes"`
	Snapshots    []audit.SnapshotCheck `json:"snapshots"`
}

func (a *app) journalReplay() *cobra.Command {
	var dir string
	var to uint64
	cmd := &cobra.Command{
		Use:   "replay --data-dir DIR [--to INDEX]",
		Short: "Rebuild the state from the journal, verify the chain and every snapshot, print the state hash",
		Long: `Rebuild the state from the journal (starting from the snapshot at its base
when it was trimmed, else from index 1), verifying the hash chain, and
compare the state with every snapshot passed on the way. Prints the state
hash (the same as GET /v1/digest at that index), totals and commands by
outcome. Exits 5 on any mismatch or damage.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var bar *progress
			r, err := audit.Replay(dir, audit.Options{To: to, Progress: func(done, total uint64) {
				if bar == nil {
					bar = newProgress(a.stderr, "replay", int(total))
				}
				bar.update(int(done))
			}})
			if r != nil {
				if perr := a.showReplay(r); perr != nil {
					return perr
				}
			}
			return err
		},
	}
	dataDirFlag(cmd, &dir)
	cmd.Flags().Uint64Var(&to, "to", 0, "stop after this index (default: the end)")
	return cmd
}

func (a *app) showReplay(r *audit.Report) error {
	out := replayOutput{DataDir: r.DataDir, From: r.From, Index: r.Index, StateHash: r.StateHash.String(),
		Accounts: r.Totals.Accounts, TotalBalance: r.Totals.Balance, Entries: r.Entries, Commands: r.Commands,
		Outcomes: r.Outcomes, Snapshots: r.Snapshots}
	if done, err := a.showJSON(out); done {
		return err
	}
	fmt.Fprintf(a.stdout, "data dir:      %s\nstarted from:  %s\nindex:         %d\nstate hash:    %s\naccounts:      %d\ntotal balance: %d\nentries:       %d\ncommands:      %d\n",
		out.DataDir, map[bool]string{true: "empty state (index 0)", false: fmt.Sprintf("snapshot at %d", out.From)}[out.From == 0],
		out.Index, out.StateHash, out.Accounts, out.TotalBalance, out.Entries, out.Commands)
	var rows [][]string
	for _, code := range engine.Codes() {
		if n := out.Outcomes[code.String()]; n > 0 {
			rows = append(rows, []string{code.String(), fmt.Sprint(n)})
		}
	}
	fmt.Fprintln(a.stdout)
	table(a.stdout, []string{"OUTCOME", "COMMANDS"}, rows)
	if len(out.Snapshots) > 0 {
		fmt.Fprintln(a.stdout)
		rows = nil
		for _, s := range out.Snapshots {
			rows = append(rows, []string{fmt.Sprint(s.Index), map[bool]string{true: "ok", false: "MISMATCH"}[s.OK], s.Detail})
		}
		table(a.stdout, []string{"SNAPSHOT", "CHECK", "DETAIL"}, rows)
	}
	return nil
}

func (a *app) journalDump() *cobra.Command {
	var dir string
	var from, to uint64
	cmd := &cobra.Command{
		Use: "dump --data-dir DIR [--from I --to J]", Short: "Print journal entries and their commands", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			asJSON, err := a.jsonOutput()
			if err != nil {
				return err
			}
			d, err := audit.Open(dir)
			if err != nil {
				return err
			}
			defer d.Close()
			from = max(from, d.Journal.First())
			if to == 0 {
				to = d.Journal.Last()
			}
			if from > to {
				return nil
			}
			return d.Journal.Iterate(from, to, func(e *engine.Entry) error {
				if asJSON {
					return json.NewEncoder(a.stdout).Encode(dumpEntry(e))
				}
				a.printEntry(e)
				return nil
			})
		},
	}
	dataDirFlag(cmd, &dir)
	cmd.Flags().Uint64Var(&from, "from", 1, "first index")
	cmd.Flags().Uint64Var(&to, "to", 0, "last index (default: the end)")
	return cmd
}

type entryJSON struct {
	Index    uint64         `json:"index"`
	Epoch    uint64         `json:"epoch"`
	Time     string         `json:"time"`
	Hash     string         `json:"hash"`
	PrevHash string         `json:"prev_hash"`
	Commands []wire.Command `json:"commands"`
}

func dumpEntry(e *engine.Entry) entryJSON {
	out := entryJSON{Index: e.Index, Epoch: e.Epoch, Time: timeOf(e), Hash: e.Hash().String(), PrevHash: e.PrevHash.String()}
	for _, c := range e.Commands {
		out.Commands = append(out.Commands, wire.FromEngine(c))
	}
	return out
}

func timeOf(e *engine.Entry) string {
	return time.UnixMilli(e.TimeMs).UTC().Format(time.RFC3339Nano)
}

func (a *app) printEntry(e *engine.Entry) {
	fmt.Fprintf(a.stdout, "entry %d  epoch %d  %s  %d commands  hash %.16s  prev %.16s\n",
		e.Index, e.Epoch, timeOf(e), len(e.Commands), e.Hash(), e.PrevHash)
	for _, c := range e.Commands {
		fmt.Fprintf(a.stdout, "  %s\n", describeCommand(c))
	}
}

func describeCommand(c engine.Command) string {
	parts := []string{c.Op.String()}
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("account", c.Account)
	add("to", c.To)
	if c.Name != "" {
		add("name", fmt.Sprintf("%q", c.Name))
	}
	if c.Amount != 0 || c.Op == engine.OpDeposit || c.Op == engine.OpWithdraw || c.Op == engine.OpTransfer {
		add("amount", fmt.Sprint(c.Amount))
	}
	add("key", c.Key)
	return strings.Join(parts, " ")
}

type statementLine struct {
	Index        uint64 `json:"index"`
	Time         string `json:"time"`
	Op           string `json:"op"`
	Amount       uint64 `json:"amount,omitempty"`
	Counterparty string `json:"counterparty,omitempty"`
	Code         string `json:"code"`
	Balance      uint64 `json:"balance"`
	Key          string `json:"key"`
}

func (a *app) journalHistory() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use: "history ACCOUNT --data-dir DIR", Short: "An account's statement: every command that touched it, its outcome and the balance after",
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			lines, r, err := statement(dir, args[0])
			if err != nil {
				return err
			}
			return a.showStatement(args[0], lines, r)
		},
	}
	dataDirFlag(cmd, &dir)
	return cmd
}

func statement(dir, account string) ([]statementLine, *audit.Report, error) {
	var lines []statementLine
	r, err := audit.Replay(dir, audit.Options{OnApply: func(e *engine.Entry, results []engine.Result, eng *engine.Engine) {
		for i, c := range e.Commands {
			if !touches(c, results[i], account) {
				continue
			}
			l := statementLine{Index: e.Index, Time: timeOf(e), Op: c.Op.String(), Amount: c.Amount, Code: results[i].Code.String(), Key: c.Key}
			if c.Op == engine.OpTransfer {
				l.Counterparty = map[bool]string{true: c.To, false: c.Account}[c.Account == account]
			}
			if acc, ok := eng.Get(account); ok {
				l.Balance = acc.Balance
			}
			lines = append(lines, l)
		}
	}})
	return lines, r, err
}

func (a *app) showStatement(account string, lines []statementLine, r *audit.Report) error {
	if done, err := a.showJSON(map[string]any{"account": account, "from_index": r.From + 1, "lines": lines}); done {
		return err
	}
	if r.From > 0 {
		fmt.Fprintf(a.stdout, "(the journal starts after index %d; earlier history was trimmed)\n", r.From)
	}
	var rows [][]string
	for _, l := range lines {
		rows = append(rows, []string{fmt.Sprint(l.Index), l.Time, l.Op, fmt.Sprint(l.Amount), l.Counterparty, l.Code, fmt.Sprint(l.Balance)})
	}
	table(a.stdout, []string{"INDEX", "TIME", "OP", "AMOUNT", "COUNTERPARTY", "OUTCOME", "BALANCE"}, rows)
	return nil
}

// touches reports whether command c (with result res) is about account:
// named in it, or created by it under a number the engine assigned.
func touches(c engine.Command, res engine.Result, account string) bool {
	if c.Account == account || c.To == account {
		return true
	}
	for _, a := range res.Accounts() {
		if a.Number == account {
			return true
		}
	}
	return false
}
