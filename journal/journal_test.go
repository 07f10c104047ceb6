package journal

import (
	"bytes"
	"errors"
	"io"
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

// TestKeepingBytes: the entries from KeepingBytes on fit in the bytes
// asked for, by Pebble's estimate, and one more would not; all of them
// fit in a bound past the journal's size.
func TestKeepingBytes(t *testing.T) {
	j := openMem(t, vfs.NewMem())
	defer j.Close()
	log := enginetest.NewLog(5)
	for range 20 {
		if err := j.Append(log.Entries(100, 20)...); err != nil {
			t.Fatal(err)
		}
		if err := j.db.Flush(); err != nil { // the estimate counts tables, not the memtable
			t.Fatal(err)
		}
	}
	total, err := j.db.EstimateDiskUsage(entryKey(1), entryKey(j.Last()+1))
	if err != nil || total == 0 {
		t.Fatalf("the journal's size: %d, %v", total, err)
	}
	size := func(from uint64) uint64 {
		n, err := j.db.EstimateDiskUsage(entryKey(from), entryKey(j.Last()+1))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, bound := range []uint64{0, total / 10, total / 2, total - 1} {
		from, err := j.KeepingBytes(bound)
		if err != nil {
			t.Fatal(err)
		}
		if size(from) > bound || from > j.First() && size(from-1) <= bound {
			t.Errorf("bound %d of %d: from %d takes %d, and from %d %d", bound, total, from, size(from), from-1, size(from-1))
		}
		if bound > 0 && bound >= total/10 && from > j.Last() {
			t.Errorf("bound %d of %d keeps nothing", bound, total)
		}
	}
	if from, _ := j.KeepingBytes(total); from != j.First() {
		t.Errorf("a bound of the whole journal keeps from %d, not %d", from, j.First())
	}
}

// TestArchiveRoundTrip: an archive gives back the entries it took, in
// order, and chains onto what is left of the journal; a cut, a changed
// byte or an archive that does not start where the reader expects is
// refused.
func TestArchiveRoundTrip(t *testing.T) {
	j := openMem(t, vfs.NewMem())
	defer j.Close()
	log := enginetest.NewLog(6)
	ents := log.Entries(30, 3)
	if err := j.Append(ents...); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	info, err := j.Archive(&buf, 20)
	if err != nil || info.From != 1 || info.To != 20 || info.LastHash != ents[19].Hash() {
		t.Fatalf("archive: %+v, %v", info, err)
	}
	var got []uint64
	read, err := ReadArchive(bytes.NewReader(buf.Bytes()), nil, func(e *engine.Entry) error { got = append(got, e.Index); return nil })
	if err != nil || read != info || len(got) != 20 || got[19] != 20 {
		t.Fatalf("read back: %+v, %v, %v", read, err, got)
	}
	if err := j.TrimBelow(21); err != nil {
		t.Fatal(err)
	}
	if base, h := j.Base(); base != info.To || h != info.LastHash {
		t.Fatalf("the journal after the trim starts after %d (%v), the archive ends at %d", base, h, info.To)
	}
	next, err := j.Archive(io.Discard, 30)
	if err != nil || next.From != 21 || next.BaseHash != info.LastHash {
		t.Fatalf("the next archive: %+v, %v", next, err)
	}
	raw := buf.Bytes()
	for i := range raw {
		if _, err := ReadArchive(bytes.NewReader(raw[:i]), nil, func(*engine.Entry) error { return nil }); !errors.Is(err, ErrArchive) {
			t.Fatalf("an archive cut at %d of %d: %v", i, len(raw), err)
		}
	}
	for _, at := range []int{len(archiveMagic) + 3, len(raw) / 2, len(raw) - 2} {
		bad := bytes.Clone(raw)
		bad[at] ^= 0x40
		if _, err := ReadArchive(bytes.NewReader(bad), nil, func(*engine.Entry) error { return nil }); err == nil {
			t.Errorf("an archive with byte %d changed was read", at)
		}
	}
	if _, err := ReadArchive(bytes.NewReader(append(bytes.Clone(raw), 0)), nil, func(*engine.Entry) error { return nil }); !errors.Is(err, ErrArchive) {
		t.Errorf("trailing bytes: %v", err)
	}
}
