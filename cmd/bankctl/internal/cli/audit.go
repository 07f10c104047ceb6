package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zkbank/zkbank/cmd/internal/audit"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
)

func (a *app) journalCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "journal", Short: "Audit a node's journal offline (on a data dir or a copy)"}
	cmd.AddCommand(a.journalReplay(), a.journalDump(), a.journalHistory(), a.journalArchive())
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
	var archives []string
	cmd := &cobra.Command{
		Use:     "replay --data-dir DIR [--archive FILE]... [--to INDEX]",
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
first index. With --archive (bankctl journal archive's files, in order)
it starts from the empty state, replays the archives and goes on with the
journal where they end.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			trust, err := a.trust(&a.sealed)
			if err != nil {
				return err
			}
			var bar *progress
			r, err := audit.Replay(dir, audit.Options{To: to, Trust: trust, Archives: archives, Progress: func(done, total uint64) {
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
	archiveFlag(cmd, &archives)
	return cmd
}

// archiveFlag adds --archive, the journal archives a replay starts with.
func archiveFlag(cmd *cobra.Command, files *[]string) {
	cmd.Flags().StringArrayVar(files, "archive", nil, "a journal archive to replay first, from index 1 (repeat, in order)")
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
	return wire.TimeOf(e.TimeMs)
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
