package datadir

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/enginetest"
	"github.com/zkbank/zkbank/history"
)

// keysConfig remembers keys for a window of two entries and 200 ms of the
// log's time past it: records leave memory at once and come back from
// the key store.
var keysConfig = engine.Config{KeyWindowEntries: 2, KeyWindowMax: 100, KeyRetainMs: 200, ClosedHoldsKept: 10}

// keyLog is a log at body version 6 of deposits under a few keys, 10 ms
// apart: many retries within the span, and keys used again after it.
func keyLog(t *testing.T, rng *rand.Rand, n int) []*engine.Entry {
	t.Helper()
	ref, err := engine.New(keysConfig)
	if err != nil {
		t.Fatal(err)
	}
	mem := enginetest.Memory{}
	var out []*engine.Entry
	for i := 0; i < n; i++ {
		cmds := []engine.Command{{Op: engine.OpCreateAccount, Key: "open", Account: "A", Name: "A"}}
		if i > 0 {
			cmds = cmds[:0]
			for j := rng.IntN(3); j > 0; j-- {
				cmds = append(cmds, engine.Command{Op: engine.OpDeposit, Key: fmt.Sprintf("k%d", rng.IntN(6)), Account: "A", Amount: 1})
			}
		}
		ent, err := enginetest.After(ref, int64(i)*10, engine.BodyV6, cmds...)
		if err != nil {
			t.Fatal(err)
		}
		applyRemembering(t, ref, mem, ent)
		out = append(out, ent)
	}
	return out
}

// applyRemembering applies ent as a node that never forgets a spilled
// record would: the reference the data dir must agree with.
func applyRemembering(t *testing.T, e *engine.Engine, mem enginetest.Memory, ent *engine.Entry) {
	t.Helper()
	if _, err := mem.Apply(e, ent); err != nil {
		t.Fatal(err)
	}
}

func referenceRemembering(t *testing.T, ents []*engine.Entry, n uint64) *engine.Engine {
	t.Helper()
	e, _ := engine.New(keysConfig)
	mem := enginetest.Memory{}
	for _, ent := range ents[:n] {
		applyRemembering(t, e, mem, ent)
	}
	return e
}

// TestRecoverWithTheKeyStoreAfterCrashes: a data dir whose log remembers
// keys by time crashes at a random point, losing a random part of what
// was not synced (the key store has no WAL), sometimes with its newest
// snapshot damaged; the recovered engine answers as a node that never
// forgot, because it starts only from a snapshot the store vouches for.
func TestRecoverWithTheKeyStoreAfterCrashes(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 5))
	for round := 0; round < 12; round++ {
		path, fs := t.TempDir(), vfs.NewCrashableMem()
		d, err := Open(path, Options{Engine: keysConfig, FS: fs})
		if err != nil {
			t.Fatal(err)
		}
		ents := keyLog(t, rng, 120)
		e, _ := engine.New(keysConfig)
		crashAt := 1 + rng.IntN(len(ents)-1)
		for _, ent := range ents[:crashAt] {
			if err := d.Journal.Append(ent); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Apply(e, ent); err != nil {
				t.Fatal(err)
			}
			if rng.IntN(8) == 0 {
				if _, err := d.SaveSnapshot(e, 0); err != nil {
					t.Fatal(err)
				}
			}
		}
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
		d.Close()
		damageNewest(t, d.Snapshots)
		d2, err := Open(path, Options{Engine: keysConfig, FS: crashed})
		if err != nil {
			t.Fatalf("round %d: open after the crash: %v", round, err)
		}
		rec, err := d2.Recover(nil)
		if err != nil {
			t.Fatalf("round %d: recover: %v", round, err)
		}
		got := rec.Engine
		if got.Index() < uint64(crashAt) {
			t.Fatalf("round %d: recovered to %d, acknowledged %d", round, got.Index(), crashAt)
		}
		if got.StateHash() != referenceRemembering(t, ents, got.Index()).StateHash() {
			t.Fatalf("round %d: recovered from %v, the state differs from a node that never forgot", round, rec.From)
		}
		checkHistory(t, round, d2.History, ents[:got.Index()])
		d2.Close()
	}
}

// checkHistory: after a crash and a recovery the history still holds every
// entry from the first, as a store that never crashed does: what a crash
// lost past the last flush, the replay wrote again.
func checkHistory(t *testing.T, round int, h *history.Store, ents []*engine.Entry) {
	t.Helper()
	ref := history.OpenMem()
	defer ref.Close()
	e, _ := engine.New(keysConfig)
	mem := enginetest.Memory{}
	for _, ent := range ents {
		if _, err := ref.Apply(func(e *engine.Engine, ent *engine.Entry) ([]engine.Result, error) { return mem.Apply(e, ent) }, e, ent); err != nil {
			t.Fatal(err)
		}
	}
	if h.From() != 1 || h.Through() != uint64(len(ents)) {
		t.Fatalf("round %d: the history holds %d..%d after the recovery to %d", round, h.From(), h.Through(), len(ents))
	}
	all := func(s *history.Store) []history.Event {
		var out []history.Event
		if err := s.Events(history.Cursor{}, func(ev history.Event) bool { out = append(out, ev); return true }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got, want := all(h), all(ref); !reflect.DeepEqual(got, want) {
		t.Fatalf("round %d: %d events after the crash, %d in a history that never crashed", round, len(got), len(want))
	}
}
