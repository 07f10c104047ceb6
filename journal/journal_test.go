package journal

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/enginetest"
	"github.com/zkbank/zkbank/keystore"
)

func openMem(t *testing.T, fs vfs.FS) *Journal {
	t.Helper()
	j, err := Open("journal", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestAppendReadReopen(t *testing.T) {
	fs := vfs.NewMem()
	j := openMem(t, fs)
	ents := enginetest.NewLog(1).Entries(20, 5)
	if err := j.Append(ents[:10]...); err != nil {
		t.Fatal(err)
	}
	if err := j.Append(ents[10:]...); err != nil {
		t.Fatal(err)
	}
	if j.First() != 1 || j.Last() != 20 || j.LastHash() != ents[19].Hash() {
		t.Fatalf("first %d last %d", j.First(), j.Last())
	}
	j.Close()
	j = openMem(t, fs)
	defer j.Close()
	if j.Last() != 20 || j.LastHash() != ents[19].Hash() {
		t.Fatalf("after reopen: last %d", j.Last())
	}
	got, err := j.Get(7)
	if err != nil || got.Hash() != ents[6].Hash() {
		t.Fatalf("get 7: %v", err)
	}
	var seen []uint64
	if err := j.Iterate(5, 9, func(e *engine.Entry) error { seen = append(seen, e.Index); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 5 || seen[0] != 5 || seen[4] != 9 {
		t.Fatalf("iterate 5..9 gave %v", seen)
	}
	if _, err := j.Get(21); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get past the end: %v", err)
	}
}

func TestAppendRefusesGapsAndForks(t *testing.T) {
	j := openMem(t, vfs.NewMem())
	defer j.Close()
	ents := enginetest.NewLog(2).Entries(4, 3)
	if err := j.Append(ents[0]); err != nil {
		t.Fatal(err)
	}
	if err := j.Append(ents[2]); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("gap: %v", err)
	}
	if err := j.Append(ents[0]); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("repeat: %v", err)
	}
	fork := enginetest.NewLog(3).Entries(2, 3)[1] // index 2, another chain
	if err := j.Append(fork); !errors.Is(err, ErrChainBroken) {
		t.Fatalf("fork: %v", err)
	}
	// A batch with a bad entry in the middle writes nothing.
	if err := j.Append(ents[1], ents[3]); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("bad batch: %v", err)
	}
	if j.Last() != 1 {
		t.Fatalf("last = %d after refused appends", j.Last())
	}
}

func TestTrimAndReset(t *testing.T) {
	fs := vfs.NewMem()
	j := openMem(t, fs)
	log := enginetest.NewLog(4)
	ents := log.Entries(10, 2)
	if err := j.Append(ents...); err != nil {
		t.Fatal(err)
	}
	if err := j.TrimBelow(6); err != nil {
		t.Fatal(err)
	}
	if j.First() != 6 {
		t.Fatalf("first = %d", j.First())
	}
	if _, err := j.Get(5); !errors.Is(err, ErrNotFound) {
		t.Fatalf("trimmed entry: %v", err)
	}
	if err := j.Iterate(3, 0, func(*engine.Entry) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("iterate from a trimmed index: %v", err)
	}
	j.Close()
	j = openMem(t, fs)
	defer j.Close()
	if base, h := j.Base(); base != 5 || h != ents[4].Hash() {
		t.Fatalf("base after reopen = %d", base)
	}
	if err := j.Append(log.Next(2)); err != nil {
		t.Fatalf("append after trim: %v", err)
	}
	if err := j.Reset(100, engine.Hash{7}); err != nil {
		t.Fatal(err)
	}
	if j.First() != 101 || j.Last() != 100 {
		t.Fatalf("after reset first %d last %d", j.First(), j.Last())
	}
	log.Continue(100, engine.Hash{7})
	if err := j.Append(log.Next(1)); err != nil {
		t.Fatalf("append after reset: %v", err)
	}
}

// TestResetBelowLast: a node whose journal forked from the cluster resets
// to a lower index than its last entry; everything it held goes.
func TestResetBelowLast(t *testing.T) {
	j := openMem(t, vfs.NewMem())
	defer j.Close()
	log := enginetest.NewLog(8)
	if err := j.Append(log.Entries(10, 2)...); err != nil {
		t.Fatal(err)
	}
	if err := j.Reset(3, engine.Hash{3}); err != nil {
		t.Fatal(err)
	}
	if j.First() != 4 || j.Last() != 3 || j.LastHash() != (engine.Hash{3}) {
		t.Fatalf("after reset: first %d last %d", j.First(), j.Last())
	}
	if _, err := j.Get(5); !errors.Is(err, ErrNotFound) {
		t.Fatalf("entry 5 after reset: %v", err)
	}
}

func TestReplay(t *testing.T) {
	j := openMem(t, vfs.NewMem())
	defer j.Close()
	ents := enginetest.NewLog(5).Entries(50, 20)
	if err := j.Append(ents...); err != nil {
		t.Fatal(err)
	}
	want, _ := engine.New(engine.DefaultConfig())
	for _, e := range ents {
		if _, err := want.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := engine.New(engine.DefaultConfig())
	keys := keystore.OpenMem(0)
	defer keys.Close()
	calls := 0
	if err := j.Replay(got, keys, 30, func(uint64) { calls++ }); err != nil {
		t.Fatal(err)
	}
	if got.Index() != 30 || calls != 30 {
		t.Fatalf("replayed to %d with %d progress calls", got.Index(), calls)
	}
	if err := j.Replay(got, keys, 0, nil); err != nil {
		t.Fatal(err)
	}
	if got.StateHash() != want.StateHash() {
		t.Fatal("replayed state differs from the applied one")
	}
}

func TestTamperedEntryIsDetected(t *testing.T) {
	j := openMem(t, vfs.NewMem())
	defer j.Close()
	ents := enginetest.NewLog(6).Entries(5, 3)
	if err := j.Append(ents...); err != nil {
		t.Fatal(err)
	}
	// Replace entry 3 with a well-formed entry that does not chain.
	other := enginetest.NewLog(7).Entries(3, 3)[2]
	if err := j.db.Set(entryKey(3), other.Raw(), nil); err != nil {
		t.Fatal(err)
	}
	err := j.Iterate(1, 0, func(*engine.Entry) error { return nil })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("tampered journal iterated: %v", err)
	}
	if err := j.db.Set(entryKey(3), []byte("garbage"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Get(3); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("garbage entry: %v", err)
	}
}

// TestCrashKeepsAPrefix appends batches to a crashable in-memory
// filesystem, crashes at random points (keeping a random part of what was
// not synced), and checks that the reopened journal holds a prefix of what
// was appended, at least everything whose Append returned, every entry
// intact and chained.
func TestCrashKeepsAPrefix(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for round := 0; round < 20; round++ {
		fs := vfs.NewCrashableMem()
		j := openMem(t, fs)
		ents := enginetest.NewLog(seed+uint64(round)).Entries(60, 10)
		acked := 0
		crashAt := rng.IntN(len(ents))
		var crashed *vfs.MemFS
		for acked < len(ents) {
			n := min(rng.IntN(5)+1, len(ents)-acked)
			if acked >= crashAt && crashed == nil {
				crashed = fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
				break
			}
			if err := j.Append(ents[acked : acked+n]...); err != nil {
				t.Fatal(err)
			}
			acked += n
		}
		if crashed == nil {
			crashed = fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
		}
		j.Close()
		checkPrefix(t, crashed, ents, acked)
	}
}

func checkPrefix(t *testing.T, fs vfs.FS, ents []*engine.Entry, acked int) {
	t.Helper()
	j := openMem(t, fs)
	defer j.Close()
	if j.Last() < uint64(acked) || j.Last() > uint64(len(ents)) {
		t.Fatalf("after crash last = %d, acknowledged %d", j.Last(), acked)
	}
	err := j.Iterate(1, 0, func(e *engine.Entry) error {
		if e.Hash() != ents[e.Index-1].Hash() {
			t.Fatalf("entry %d differs after crash", e.Index)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("after crash: %v", err)
	}
}
