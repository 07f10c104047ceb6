package cli

import (
	"testing"

	"github.com/zkbank/zkbank/cmd/internal/audit"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
	"github.com/zkbank/zkbank/journal/datadir"
)

// writeJournal writes entries of the given commands, one entry per list,
// into a new data dir.
func writeJournal(t *testing.T, entries ...[]engine.Command) string {
	t.Helper()
	return writeJournalAt(t, engine.BodyV1, entries...)
}

// writeJournalAt is writeJournal in bodies of version; a sealed layout
// gets a stand-in key id and signature, its body in the clear (a replay
// without a trust checks neither).
func writeJournalAt(t *testing.T, version uint32, entries ...[]engine.Command) string {
	t.Helper()
	dir := t.TempDir()
	d, err := datadir.Open(dir, datadir.Options{Engine: engine.DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var prev engine.Hash
	for i, cmds := range entries {
		e := &engine.Entry{Envelope: entry.Envelope{Index: uint64(i + 1), Epoch: 1, PrevHash: prev, TimeMs: 1_764_579_600_000, BodyVersion: version}, Commands: cmds}
		if version >= engine.BodyV3 {
			e.KeyID, e.Sig = 1, []byte{1}
		}
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
// three times; a rejection leaves the balance as it was, a replay is no
// line; a transfer says its direction and counterparty.
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
	st, _, err := statement(dir, "H1", audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lines := st.Lines
	want := []struct {
		op, dir, counterparty, code string
		balance                     uint64
	}{
		{"create_account", "in", "", "ok", 100},
		{"deposit", "in", "", "ok", 110},
		{"withdraw", "out", "", "ok", 80},
		{"withdraw", "out", "", "insufficient_funds", 80},
		{"transfer", "out", "H2", "ok", 75},
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
	if lines[1].Index != 1 || lines[1].Position != 1 || lines[4].Index != 2 || lines[5].Cursor != "2.2" {
		t.Errorf("positions: %+v", lines)
	}
}

// TestAStatementShowsCapturesAndApprovals: a hold changes no balance
// until its capture, which is a transfer of what it captured; an approved
// deposit is the deposit, at the approval's index; the pending request
// and a void leave the balance as it was.
func TestAStatementShowsCapturesAndApprovals(t *testing.T) {
	admin, teller, other := engine.CertPrincipal(engine.RoleAdmin, "a1"), engine.CertPrincipal(engine.RoleTeller, "b1"), engine.CertPrincipal(engine.RoleTeller, "b2")
	dir := writeJournalAt(t, engine.BodyV5,
		[]engine.Command{
			{Op: engine.OpCreateAccount, Key: "c", Account: "H1", Name: "Hal", Amount: 100, Principal: admin},
			{Op: engine.OpCreateAccount, Key: "c2", Account: "H2", Name: "Ida", Principal: admin},
			{Op: engine.OpCreateHold, Key: "h", Account: "H1", To: "H2", Amount: 40, ExpiresInMs: 60_000, Principal: admin},
			{Op: engine.OpSetApprovalLimit, Key: "l", Amount: 10, Token: &engine.TokenSpec{Role: engine.RoleTeller}, Principal: admin},
		},
		[]engine.Command{
			{Op: engine.OpCaptureHold, Key: "x", Hold: 1, Amount: 30, Principal: admin},
			{Op: engine.OpDeposit, Key: "d", Account: "H1", Amount: 500, Principal: teller},
			{Op: engine.OpApprove, Key: "y", Approval: 1, Principal: other},
			{Op: engine.OpCreateHold, Key: "h2", Account: "H1", To: "H2", Amount: 5, ExpiresInMs: 60_000, Principal: admin},
			{Op: engine.OpVoidHold, Key: "v", Hold: 2, Principal: admin},
		})
	st, _, err := statement(dir, "H1", audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lines := st.Lines
	want := []struct {
		op, dir, counterparty, code string
		amount, balance             uint64
	}{
		{"create_account", "in", "", "ok", 100, 100},
		{"create_hold", "", "", "ok", 40, 100},
		{"capture_hold", "out", "H2", "ok", 30, 70},
		{"deposit", "in", "", "approval_pending", 500, 70},
		{"approve", "in", "", "ok", 500, 570},
		{"create_hold", "", "", "ok", 5, 570},
		{"void_hold", "", "", "ok", 0, 570},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d: %+v", len(lines), len(want), lines)
	}
	for i, w := range want {
		l := lines[i]
		if l.Op != w.op || l.Direction != w.dir || l.Counterparty != w.counterparty || l.Code != w.code || l.Amount != w.amount || l.Balance != w.balance {
			t.Errorf("line %d: %+v, want %+v", i+1, l, w)
		}
	}
}
