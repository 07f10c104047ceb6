package cli

import (
	"testing"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
	"github.com/zkbank/zkbank/journal/datadir"
)

// writeJournal writes entries of the given commands, one entry per list,
// into a new data dir.
func writeJournal(t *testing.T, entries ...[]engine.Command) string {
	t.Helper()
	dir := t.TempDir()
	d, err := datadir.Open(dir, datadir.Options{Engine: engine.DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var prev engine.Hash
	for i, cmds := range entries {
		e := &engine.Entry{Envelope: entry.Envelope{Index: uint64(i + 1), Epoch: 1, PrevHash: prev, TimeMs: 1_764_579_600_000}, Commands: cmds}
		if _, err := engine.EncodeEntry(e); err != nil {
			t.Fatal(err)
		}
		if err := d.Journal.Append(e); err != nil {
			t.Fatal(err)
		}
		prev = e.Hash()
	}
	return dir
}

// TestAStatementShowsEachCommandsOwnBalance: in one entry, a create, a
// deposit and a withdrawal show 100, 110, 80, not the entry's end balance
// three times; a rejection and a replay leave the balance as it was; a
// transfer says its direction and counterparty.
func TestAStatementShowsEachCommandsOwnBalance(t *testing.T) {
	dir := writeJournal(t,
		[]engine.Command{
			{Op: engine.OpCreateAccount, Key: "c", Account: "H1", Name: "Hal", Amount: 100},
			{Op: engine.OpDeposit, Key: "d", Account: "H1", Amount: 10},
			{Op: engine.OpWithdraw, Key: "w", Account: "H1", Amount: 30},
			{Op: engine.OpWithdraw, Key: "too-much", Account: "H1", Amount: 1000},
			{Op: engine.OpCreateAccount, Key: "c2", Account: "H2", Name: "Ida"},
		},
		[]engine.Command{
			{Op: engine.OpTransfer, Key: "t", Account: "H1", To: "H2", Amount: 5},
			{Op: engine.OpDeposit, Key: "d", Account: "H1", Amount: 10}, // a retry: replayed
			{Op: engine.OpTransfer, Key: "t2", Account: "H2", To: "H1", Amount: 2},
		})
	lines, _, err := statement(dir, "H1", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		op, dir, counterparty, code string
		balance                     uint64
	}{
		{"create_account", "in", "", "ok", 100},
		{"deposit", "in", "", "ok", 110},
		{"withdraw", "out", "", "ok", 80},
		{"withdraw", "out", "", "insufficient_funds", 80},
		{"transfer", "out", "H2", "ok", 75},
		{"deposit", "in", "", "ok", 75},
		{"transfer", "in", "H2", "ok", 77},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d: %+v", len(lines), len(want), lines)
	}
	for i, w := range want {
		l := lines[i]
		if l.Op != w.op || l.Direction != w.dir || l.Counterparty != w.counterparty || l.Code != w.code || l.Balance != w.balance {
			t.Errorf("line %d: %+v, want %+v", i+1, l, w)
		}
	}
	if !lines[5].Replayed || lines[1].Index != 1 || lines[1].Position != 1 || lines[4].Index != 2 {
		t.Errorf("positions or the replay mark: %+v", lines)
	}
}
