package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zkbank/zkbank/cmd/internal/audit"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/seal"
)

func (a *app) journalCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "journal", Short: "Audit a node's journal offline (on a data dir or a copy)"}
	cmd.AddCommand(a.journalReplay(), a.journalDump(), a.journalHistory())
	return cmd
}

// dataDirFlag adds --data-dir and the flags that open a sealed journal.
func (a *app) dataDirFlag(cmd *cobra.Command, dir *string) {
	dataDirOnly(cmd, dir)
	a.sealed.add(cmd)
}

// dataDirOnly adds --data-dir, for a command that reads no entry.
func dataDirOnly(cmd *cobra.Command, dir *string) {
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
	Verified     uint64                `json:"verified"` // sealed entries whose signature verified
	Outcomes     map[string]uint64     `json:"outcomes"`
	Snapshots    []audit.SnapshotCheck `json:"snapshots"`
}

func (a *app) journalReplay() *cobra.Command {
	var dir string
	var to uint64
	cmd := &cobra.Command{
		Use:     "replay --data-dir DIR [--to INDEX]",
		Example: "  cp -r zkbank-dev/nodes/n1/data /tmp/audit\n  bankctl journal replay --data-dir /tmp/audit\n  bankctl journal replay --data-dir /tmp/audit --to 1200 -o json",
		Short:   "Rebuild the state from the journal, verify the chain and every snapshot, print the state hash",
		Long: `Rebuild the state from the journal (starting from the snapshot at its base
when it was trimmed, else from index 1), verifying the hash chain, and
compare the state with every snapshot passed on the way. Prints the state
hash (the same as GET /v1/digest at that index), totals and commands by
outcome. A sealed journal needs the data keys (--data-keys, or data.keys
beside --cacert); with --cacert every signature is verified too, against
the CA and the cluster's id (--cluster-id, or cluster.id beside it).
Exits 5 on any mismatch, damage or signature that fails, naming the
first index.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			trust, err := a.trust(&a.sealed)
			if err != nil {
				return err
			}
			var bar *progress
			r, err := audit.Replay(dir, audit.Options{To: to, Trust: trust, Progress: func(done, total uint64) {
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
	a.dataDirFlag(cmd, &dir)
	cmd.Flags().Uint64Var(&to, "to", 0, "stop after this index (default: the end)")
	return cmd
}

func (a *app) showReplay(r *audit.Report) error {
	out := replayOutput{DataDir: r.DataDir, From: r.From, Index: r.Index, StateHash: r.StateHash.String(),
		Accounts: r.Totals.Accounts, TotalBalance: r.Totals.Balance, Entries: r.Entries, Commands: r.Commands,
		Verified: r.Verified, Outcomes: r.Outcomes, Snapshots: r.Snapshots}
	if done, err := a.showJSON(out); done {
		return err
	}
	fmt.Fprintf(a.stdout, "data dir:      %s\nstarted from:  %s\nindex:         %d\nstate hash:    %s\naccounts:      %d\ntotal balance: %d\nentries:       %d\ncommands:      %d\nverified:      %d signatures\n",
		out.DataDir, map[bool]string{true: "empty state (index 0)", false: fmt.Sprintf("snapshot at %d", out.From)}[out.From == 0],
		out.Index, out.StateHash, out.Accounts, out.TotalBalance, out.Entries, out.Commands, out.Verified)
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
		Example: "  bankctl journal dump --data-dir /tmp/audit --from 100 --to 120\n  bankctl journal dump --data-dir /tmp/audit -o json | jq .commands",
		RunE: func(c *cobra.Command, _ []string) error {
			asJSON, err := a.jsonOutput()
			if err != nil {
				return err
			}
			// A replay, not a read of the journal: who sent each command
			// (a token's name) and its outcome are the engine's to say.
			trust, err := a.trust(&a.sealed)
			if err != nil {
				return err
			}
			var werr error
			_, err = audit.Replay(dir, audit.Options{To: to, Trust: trust, OnApply: func(e *engine.Entry, res []engine.Result, eng *engine.Engine) {
				if e.Index < from || werr != nil {
					return
				}
				if asJSON {
					werr = json.NewEncoder(a.stdout).Encode(dumpEntry(e, res, eng))
					return
				}
				a.printEntry(e, res, eng)
			}})
			return errors.Join(err, werr)
		},
	}
	a.dataDirFlag(cmd, &dir)
	cmd.Flags().Uint64Var(&from, "from", 1, "first index")
	cmd.Flags().Uint64Var(&to, "to", 0, "last index (default: the end)")
	return cmd
}

type entryJSON struct {
	Index    uint64        `json:"index"`
	Epoch    uint64        `json:"epoch"`
	Time     string        `json:"time"`
	Hash     string        `json:"hash"`
	PrevHash string        `json:"prev_hash"`
	Commands []dumpCommand `json:"commands"`
}

// dumpCommand is a command as journal dump shows it: its batch form, who
// sent it, and its outcome.
type dumpCommand struct {
	wire.Command
	Serial string `json:"serial,omitempty"`
	By     string `json:"by,omitempty"`
	Code   string `json:"code"`
}

func dumpEntry(e *engine.Entry, res []engine.Result, eng *engine.Engine) entryJSON {
	out := entryJSON{Index: e.Index, Epoch: e.Epoch, Time: timeOf(e), Hash: e.Hash().String(), PrevHash: e.PrevHash.String()}
	for i, c := range e.Commands {
		out.Commands = append(out.Commands, dumpCommand{Command: wire.FromEngine(c), Serial: c.Serial, By: eng.PrincipalName(c.Principal), Code: res[i].Code.String()})
	}
	return out
}

func timeOf(e *engine.Entry) string {
	return time.UnixMilli(e.TimeMs).UTC().Format(time.RFC3339Nano)
}

func (a *app) printEntry(e *engine.Entry, res []engine.Result, eng *engine.Engine) {
	fmt.Fprintf(a.stdout, "entry %d  epoch %d  %s  %d commands  hash %.16s  prev %.16s\n",
		e.Index, e.Epoch, timeOf(e), len(e.Commands), e.Hash(), e.PrevHash)
	for i, c := range e.Commands {
		line := describeCommand(c) + " -> " + res[i].Code.String()
		if by := eng.PrincipalName(c.Principal); by != "" {
			line += "  by " + by
		}
		fmt.Fprintf(a.stdout, "  %s\n", line)
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
	add("serial", c.Serial)
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
	Position     int    `json:"position"` // of the command in its entry, from 0
	Time         string `json:"time"`
	Op           string `json:"op"`
	Direction    string `json:"direction,omitempty"` // in or out, for money that moved
	Amount       uint64 `json:"amount,omitempty"`
	Counterparty string `json:"counterparty,omitempty"`
	Code         string `json:"code"`
	Replayed     bool   `json:"replayed,omitempty"`
	Balance      uint64 `json:"balance"` // after this command
	Key          string `json:"key"`
	By           string `json:"by,omitempty"` // who sent it (a token's name, a certificate)
}

func (a *app) journalHistory() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "history ACCOUNT --data-dir DIR",
		Short: "An account's statement: every command that touched it, its outcome and the balance after it",
		Long: `Replay a data dir's journal and list every command that touched the
account, in log order: index and position in the entry, time, op,
direction (in or out) and counterparty of the money, outcome, and the
balance right after that command (a rejected or replayed command leaves
it as it was). Stop the node first, or audit a copy of its data dir.`,
		Example: `  bankctl journal history 0000000001 --data-dir /tmp/audit
  bankctl journal history IE29-AIBK-9311 --data-dir /tmp/audit -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			trust, err := a.trust(&a.sealed)
			if err != nil {
				return err
			}
			lines, r, err := statement(dir, args[0], trust)
			if err != nil {
				return err
			}
			if len(lines) == 0 {
				return wire.NewProblem(engine.CodeAccountNotFound.String(),
					fmt.Sprintf("no command in this journal (indexes %d to %d) touched account %q", r.From+1, r.Index, args[0]))
			}
			return a.showStatement(args[0], lines, r)
		},
	}
	a.dataDirFlag(cmd, &dir)
	return cmd
}

// statement replays the journal and keeps a line per command that touched
// account, each with the balance its own result gives.
func statement(dir, account string, trust *seal.Trust) ([]statementLine, *audit.Report, error) {
	var lines []statementLine
	var balance uint64
	started := false
	r, err := audit.Replay(dir, audit.Options{Trust: trust, OnApply: func(e *engine.Entry, results []engine.Result, eng *engine.Engine) {
		for i, c := range e.Commands {
			if !started { // the balance at the replay's start, before this entry's commands
				started = true
				balance = balanceBefore(eng, e, results, account)
			}
			if !touches(c, results[i], account) {
				continue
			}
			balance = balanceAfter(results[i], account, balance)
			line := statementRow(e, i, c, results[i], account, balance)
			line.By = eng.PrincipalName(c.Principal)
			lines = append(lines, line)
		}
	}})
	return lines, r, err
}

// moved is the money command a command amounts to: a capture is a
// transfer of what it captured from the hold's from to its to, and an
// approval the command it applied; any other command is itself.
func moved(c engine.Command, res engine.Result) engine.Command {
	switch {
	case c.Op == engine.OpCaptureHold && res.Hold != nil:
		return engine.Command{Op: engine.OpTransfer, Account: res.Hold.From, To: res.Hold.To, Amount: res.Hold.Captured}
	case c.Op == engine.OpApprove && res.Approval != nil:
		a := res.Approval
		return engine.Command{Op: a.Op, Account: a.Account, To: a.To, Amount: a.Amount}
	}
	return c
}

// statementRow is one command's line in account's statement.
func statementRow(e *engine.Entry, pos int, cmd engine.Command, res engine.Result, account string, balance uint64) statementLine {
	c := moved(cmd, res)
	l := statementLine{Index: e.Index, Position: pos, Time: timeOf(e), Op: cmd.Op.String(), Amount: c.Amount,
		Code: res.Code.String(), Replayed: res.Replayed, Balance: balance, Key: cmd.Key}
	switch c.Op {
	case engine.OpDeposit:
		l.Direction = "in"
	case engine.OpWithdraw:
		l.Direction = "out"
	case engine.OpCreateAccount:
		if c.Amount > 0 {
			l.Direction = "in"
		}
	case engine.OpTransfer:
		l.Direction, l.Counterparty = "out", c.To
		if c.To == account {
			l.Direction, l.Counterparty = "in", c.Account
		}
	}
	return l
}

// balanceAfter is the account's balance after a command: as its result
// shows it when the command changed something, else as it was.
func balanceAfter(res engine.Result, account string, was uint64) uint64 {
	if res.Code != engine.CodeOK || res.Replayed {
		return was
	}
	for _, a := range res.Accounts() {
		if a.Number == account {
			return a.Balance
		}
	}
	return was
}

// balanceBefore works out the account's balance before the first entry
// the replay applied (the snapshot it started from), from the engine after
// that entry and the entry's own results, undone in reverse.
func balanceBefore(eng *engine.Engine, e *engine.Entry, results []engine.Result, account string) uint64 {
	acc, ok := eng.Get(account)
	bal := acc.Balance
	if !ok {
		bal = 0
	}
	for i := len(e.Commands) - 1; i >= 0; i-- {
		c, res := e.Commands[i], results[i]
		if res.Code != engine.CodeOK || res.Replayed || !touches(c, res, account) {
			continue
		}
		bal = undo(moved(c, res), account, bal)
	}
	return bal
}

// undo is the balance before a successful command, given the one after.
func undo(c engine.Command, account string, after uint64) uint64 {
	switch {
	case c.Op == engine.OpDeposit, c.Op == engine.OpTransfer && c.To == account:
		return after - c.Amount
	case c.Op == engine.OpWithdraw, c.Op == engine.OpTransfer:
		return after + c.Amount
	case c.Op == engine.OpCreateAccount:
		return 0
	}
	return after // rename, a hold's create or void; delete leaves a zero balance either way
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
		code := l.Code
		if l.Replayed {
			code += " (replay)"
		}
		rows = append(rows, []string{fmt.Sprintf("%d.%d", l.Index, l.Position), l.Time, l.Op, l.Direction, fmt.Sprint(l.Amount), l.Counterparty, code, fmt.Sprint(l.Balance), l.By})
	}
	table(a.stdout, []string{"INDEX", "TIME", "OP", "DIR", "AMOUNT", "COUNTERPARTY", "OUTCOME", "BALANCE", "BY"}, rows)
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
