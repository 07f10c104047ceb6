package engine

import (
	"fmt"

	"github.com/zkbank/zkbank/engine/entry"
)

// nextEntry builds the entry that extends e's log with cmds, encoded and
// decoded again so that every test also exercises the wire format.
func nextEntry(t tb, e *Engine, cmds ...Command) *Entry {
	t.Helper()
	return nextEntryAt(t, e, BodyV1, 1_700_000_000_000, cmds...)
}

// nextEntryAt is nextEntry in a body of version, stamped timeMs. A sealed
// layout gets a stand-in key id and signature, its body in the clear: the
// engine checks neither (package seal does).
func nextEntryAt(t tb, e *Engine, version uint32, timeMs int64, cmds ...Command) *Entry {
	t.Helper()
	ent := &Entry{Envelope: entry.Envelope{Index: e.Index() + 1, Epoch: max(e.Epoch(), 1), PrevHash: e.LastHash(), TimeMs: timeMs, BodyVersion: version}, Commands: cmds}
	if version >= BodyV3 {
		ent.KeyID, ent.Sig = 1, []byte{1}
	}
	raw, err := EncodeEntry(ent)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	dec, err := DecodeEntry(raw)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return dec
}

// apply applies cmds as one entry and returns their results.
func apply(t tb, e *Engine, cmds ...Command) []Result {
	t.Helper()
	res, err := e.Apply(nextEntry(t, e, cmds...))
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return res
}

func newTestEngine(t tb) *Engine {
	t.Helper()
	e, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var keySeq int

func key() string {
	keySeq++
	return fmt.Sprintf("k-%d", keySeq)
}

func create(number, name string, opening uint64) Command {
	return Command{Op: OpCreateAccount, Key: key(), Account: number, Name: name, Amount: opening}
}

func deposit(number string, amount uint64) Command {
	return Command{Op: OpDeposit, Key: key(), Account: number, Amount: amount}
}

func withdraw(number string, amount uint64) Command {
	return Command{Op: OpWithdraw, Key: key(), Account: number, Amount: amount}
}

func transfer(from, to string, amount uint64) Command {
	return Command{Op: OpTransfer, Key: key(), Account: from, To: to, Amount: amount}
}

func remove(number string) Command {
	return Command{Op: OpDeleteAccount, Key: key(), Account: number}
}

func rename(number, name string) Command {
	return Command{Op: OpRename, Key: key(), Account: number, Name: name}
}

// tb is what the helpers need from *testing.T, *testing.B and *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}
