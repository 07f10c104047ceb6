package keystore

import (
	"bytes"
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/enginetest"
)

// node is the system under test: an engine, its store, and the snapshots
// it keeps (the store synced for each), restarting from any of them.
type node struct {
	e     *engine.Engine
	s     *Store
	snaps []snap // oldest first, at most three
	log   []*engine.Entry
}

type snap struct {
	index uint64
	state []byte
}

func (n *node) snapshot(t *rapid.T) {
	var b bytes.Buffer
	if err := n.e.WriteState(&b); err != nil {
		t.Fatal(err)
	}
	if err := n.s.Sync(n.e.Index()); err != nil {
		t.Fatal(err)
	}
	n.snaps = append(n.snaps, snap{index: n.e.Index(), state: b.Bytes()})
	if len(n.snaps) > 3 {
		n.snaps = n.snaps[1:]
	}
	n.s.CollectBelow(n.snaps[0].index)
}

// restart starts again from a kept snapshot and replays the log after it
// through the store, which is ahead of that snapshot.
func (n *node) restart(t *rapid.T, which int) {
	sn := n.snaps[which]
	if !n.s.Vouches(sn.index) {
		t.Fatalf("the store does not vouch for its own snapshot at %d", sn.index)
	}
	e, err := engine.Restore(n.e.Config(), bytes.NewReader(sn.state))
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range n.log[sn.index:] {
		if _, err := n.s.Apply(e, ent); err != nil {
			t.Fatalf("replay %d: %v", ent.Index, err)
		}
	}
	n.e = e
}

// install replaces the store with a copy of itself made by export and
// import, as a node that installs a peer's snapshot gets one.
func (n *node) install(t *rapid.T) {
	var b bytes.Buffer
	if _, err := n.s.Export(&b); err != nil {
		t.Fatal(err)
	}
	fresh := OpenMem(n.s.retainMs)
	if _, err := fresh.Import(&b, n.e.Index()); err != nil {
		t.Fatal(err)
	}
	n.s.Close()
	n.s = fresh
	n.snapshot(t) // the installed snapshot is the only one
	n.snaps = n.snaps[len(n.snaps)-1:]
}

// storeAgreesWithMemory: a node whose store restarts from older
// snapshots, collects, and is replaced by an import, answers every
// command as the reference that never forgets (enginetest.Memory, which
// the engine's own property test checks against a model that remembers
// keys by time), and ends at the same
// state. Keys come from a small set and time moves fast against the
// span, so keys are used again after their span and their records pile
// up.
func storeAgreesWithMemory(t *rapid.T) {
	retain := rapid.Int64Range(20, 200).Draw(t, "retain")
	cfg := engine.Config{KeyWindowEntries: uint64(rapid.IntRange(1, 3).Draw(t, "window")), KeyWindowMax: 100, KeyRetainMs: retain, ClosedHoldsKept: 10}
	ref, mem := newEngine(t, cfg), enginetest.Memory{}
	n := &node{e: newEngine(t, cfg), s: OpenMem(retain)}
	defer func() { n.s.Close() }()
	step := func(ent *engine.Entry) {
		want, err := mem.Apply(ref, ent)
		if err != nil {
			t.Fatalf("apply %d to the reference: %v", ent.Index, err)
		}
		got, err := n.s.Apply(n.e, ent)
		if err != nil {
			t.Fatalf("apply %d: %v", ent.Index, err)
		}
		n.log = append(n.log, ent)
		for i := range want {
			if want[i].Code != got[i].Code || want[i].Replayed != got[i].Replayed {
				t.Fatalf("entry %d command %d: store %v (replayed %v), memory %v (replayed %v)",
					ent.Index, i, got[i].Code, got[i].Replayed, want[i].Code, want[i].Replayed)
			}
		}
	}
	step(nextEntry(t, ref, 1, create("A", 0)))
	n.snapshot(t)
	clock := int64(1)
	for i, steps := 0, rapid.IntRange(1, 60).Draw(t, "entries"); i < steps; i++ {
		clock += rapid.Int64Range(0, retain/2).Draw(t, "tick")
		var cmds []engine.Command
		for j, k := 0, rapid.IntRange(0, 3).Draw(t, "commands"); j < k; j++ {
			key := fmt.Sprintf("k%d", rapid.IntRange(0, 5).Draw(t, "key"))
			cmds = append(cmds, deposit(key, "A", rapid.Uint64Range(1, 2).Draw(t, "amount")))
		}
		step(nextEntry(t, ref, clock, cmds...))
		switch rapid.IntRange(0, 9).Draw(t, "then") {
		case 0, 1:
			n.snapshot(t)
		case 2:
			n.restart(t, rapid.IntRange(0, len(n.snaps)-1).Draw(t, "snapshot"))
		case 3:
			n.install(t)
		}
		if n.e.StateHash() != ref.StateHash() {
			t.Fatalf("after entry %d the states differ", ref.Index())
		}
	}
}

func TestPropertyStoreAgreesWithMemory(t *testing.T) {
	rapid.Check(t, storeAgreesWithMemory)
}

// FuzzStoreAgainstMemory is the property for the fuzzer (go test -fuzz).
func FuzzStoreAgainstMemory(f *testing.F) {
	f.Fuzz(rapid.MakeFuzz(storeAgreesWithMemory))
}
