package engine

import (
	"bytes"
	"errors"
	"testing"

	"github.com/zkbank/zkbank/engine/entry"
)

func entryAt(e *Engine, version uint32, cmds ...Command) *Entry {
	return &Entry{Envelope: entry.Envelope{Index: e.Index() + 1, Epoch: max(e.Epoch(), 1), PrevHash: e.LastHash(), BodyVersion: version}, Commands: cmds}
}

func applyAt(t *testing.T, e *Engine, version uint32, cmds ...Command) error {
	t.Helper()
	ent := entryAt(e, version, cmds...)
	if _, err := EncodeEntry(ent); err != nil {
		t.Fatal(err)
	}
	back, err := DecodeEntry(ent.Raw())
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Apply(back)
	return err
}

// TestTheLogSwitchesBodyVersionOnceAndNeverBack: the first entry of a
// newer body version switches the log at its index; an older one after
// it is a replication fault that changes nothing.
func TestTheLogSwitchesBodyVersionOnceAndNeverBack(t *testing.T) {
	e, _ := New(DefaultConfig())
	if err := applyAt(t, e, BodyV1, create("A", "Ada", 5)); err != nil {
		t.Fatal(err)
	}
	v1State := stateBytes(t, e)
	if err := applyAt(t, e, BodyV2, Command{Op: OpDeposit, Key: "k2", Account: "A", Amount: 1, Principal: "t:7"}); err != nil {
		t.Fatal(err)
	}
	if e.BodyVersion() != BodyV2 || e.VersionSince() != 2 {
		t.Fatalf("body version %d since %d, want 2 since 2", e.BodyVersion(), e.VersionSince())
	}
	if err := applyAt(t, e, BodyV2, deposit("A", 1)); err != nil {
		t.Fatal(err)
	}
	if e.VersionSince() != 2 {
		t.Fatalf("the switch moved to %d", e.VersionSince())
	}
	hash := e.StateHash()
	if err := applyAt(t, e, BodyV1, deposit("A", 1)); !errors.Is(err, ErrBodyRegressed) {
		t.Fatalf("a version 1 entry after the switch: %v, want ErrBodyRegressed", err)
	}
	if e.StateHash() != hash || e.Index() != 3 {
		t.Fatal("a refused entry changed the state")
	}
	if v1State[0] != stateV1 {
		t.Fatalf("a state at body version 1 is written as state version %d", v1State[0])
	}
	again, err := Restore(e.Config(), bytes.NewReader(stateBytes(t, e)))
	if err != nil || again.BodyVersion() != BodyV2 || again.VersionSince() != 2 || again.StateHash() != hash {
		t.Fatalf("restored %v at body version %d since %d", err, again.BodyVersion(), again.VersionSince())
	}
}

// TestAVersion1BodyCarriesNoPrincipal: written into a version 1 body, a
// command loses its principal (on a copy: the caller's stays); read from
// one, a principal is malformed.
func TestAVersion1BodyCarriesNoPrincipal(t *testing.T) {
	cmd := Command{Op: OpDeposit, Key: "k", Account: "A", Amount: 1, Principal: "t:1"}
	cmds := []Command{cmd}
	v1, err := EncodeBody(BodyV1, cmds)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeBody(BodyV1, v1); err != nil || got[0].Principal != "" || cmds[0].Principal != "t:1" {
		t.Fatalf("version 1: %+v %v, the caller's %+v", got, err, cmds[0])
	}
	if _, err := ForBody(BodyV1, []Command{{Op: OpRevokeToken, Key: "k", Token: &TokenSpec{ID: 1}}}); !errors.Is(err, ErrNotInVersion) {
		t.Fatalf("a token op for a version 1 body: %v", err)
	}
	body, err := EncodeBody(BodyV2, []Command{cmd})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeBody(BodyV2, body); err != nil || got[0] != cmd {
		t.Fatalf("version 2: %+v %v", got, err)
	}
	if _, err := DecodeBody(BodyV1, body); !errors.Is(err, ErrMalformedEntry) {
		t.Fatalf("a principal read from a version 1 body: %v", err)
	}
	if _, err := DecodeBody(BodyVersionMax+1, body); !errors.Is(err, ErrUnknownBodyVersion) {
		t.Fatalf("an unknown body version: %v", err)
	}
}
