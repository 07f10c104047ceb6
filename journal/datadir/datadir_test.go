package datadir

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/enginetest"
	"github.com/zkbank/zkbank/snapshot"
)

func open(t *testing.T, path string, fs vfs.FS) *Dir {
	t.Helper()
	d, err := Open(path, Options{Engine: engine.DefaultConfig(), FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// reference applies ents[:n] to a fresh engine.
func reference(t *testing.T, ents []*engine.Entry, n uint64) *engine.Engine {
	t.Helper()
	e, _ := engine.New(engine.DefaultConfig())
	for _, ent := range ents[:n] {
		if _, err := e.Apply(ent); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// TestRecoverAfterCrashes: append and apply random entries, snapshot at
// random points, crash at a random point (keeping a random part of unsynced
// journal data), sometimes damage the newest snapshot, then restart. The
// recovered engine must equal an engine that applied the same entries in
// memory, and hold at least every acknowledged entry.
func TestRecoverAfterCrashes(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	for round := 0; round < 12; round++ {
		path := t.TempDir()
		fs := vfs.NewCrashableMem()
		d := open(t, path, fs)
		ents := enginetest.NewLog(seed+uint64(round)).Entries(80, 12)
		e, _ := engine.New(engine.DefaultConfig())
		crashAt := rng.IntN(len(ents))
		for i := 0; i < crashAt; i++ {
			if err := d.Journal.Append(ents[i]); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Apply(ents[i]); err != nil {
				t.Fatal(err)
			}
			if rng.IntN(10) == 0 {
				saveSnapshot(t, d.Snapshots, e)
			}
		}
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
		d.Close()
		damaged := rng.IntN(3) == 0 && damageNewest(t, d.Snapshots)

		d2 := open(t, path, crashed)
		rec, err := d2.Recover(nil)
		if err != nil {
			t.Fatalf("round %d: recover: %v", round, err)
		}
		got := rec.Engine
		if got.Index() < uint64(crashAt) || got.Index() != d2.Journal.Last() {
			t.Fatalf("round %d: recovered to %d, acknowledged %d, journal last %d", round, got.Index(), crashAt, d2.Journal.Last())
		}
		if got.StateHash() != reference(t, ents, got.Index()).StateHash() {
			t.Fatalf("round %d: recovered state differs from the reference", round)
		}
		if damaged && len(rec.Skipped) == 0 {
			t.Fatalf("round %d: damaged snapshot was not skipped", round)
		}
		d2.Close()
	}
}

func damageNewest(t *testing.T, s *snapshot.Store) bool {
	list, _ := s.List()
	if len(list) == 0 {
		return false
	}
	b, err := os.ReadFile(list[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(list[0].Path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return true
}

func TestTrimmedJournalNeedsASnapshot(t *testing.T) {
	path := t.TempDir()
	d := open(t, path, vfs.NewMem())
	defer d.Close()
	ents := enginetest.NewLog(21).Entries(30, 5)
	if err := d.Journal.Append(ents...); err != nil {
		t.Fatal(err)
	}
	if err := d.Journal.TrimBelow(20); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Recover(nil); !errors.Is(err, ErrNoStart) {
		t.Fatalf("recover without a snapshot: %v", err)
	}
	// A peer's snapshot at 25 lines everything up again.
	e, _, err := d.InstallSaved(receive(t, d, reference(t, ents, 25)))
	if err != nil {
		t.Fatal(err)
	}
	if e.Index() != 30 || e.StateHash() != reference(t, ents, 30).StateHash() {
		t.Fatalf("after install: index %d", e.Index())
	}
	rec, err := d.Recover(nil)
	if err != nil || rec.Engine.StateHash() != e.StateHash() || rec.Replayed != 5 {
		t.Fatalf("recover after install: %v (replayed %d)", err, rec.Replayed)
	}
}

func TestInstallBeyondTheJournal(t *testing.T) {
	d := open(t, t.TempDir(), vfs.NewMem())
	defer d.Close()
	log := enginetest.NewLog(22)
	ents := log.Entries(40, 5)
	if err := d.Journal.Append(ents[:10]...); err != nil {
		t.Fatal(err)
	}
	e, _, err := d.InstallSaved(receive(t, d, reference(t, ents, 40)))
	if err != nil {
		t.Fatal(err)
	}
	if e.Index() != 40 || d.Journal.Last() != 40 || d.Journal.First() != 41 {
		t.Fatalf("engine %d, journal %d..%d", e.Index(), d.Journal.First(), d.Journal.Last())
	}
	if err := d.Journal.Append(log.Next(5)); err != nil {
		t.Fatalf("journal does not continue after the snapshot: %v", err)
	}
}

func saveSnapshot(t *testing.T, store *snapshot.Store, e *engine.Engine) snapshot.Info {
	t.Helper()
	info, err := store.Save(e, 0)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// receive takes a snapshot of e, as a peer would send it, into d's store.
func receive(t *testing.T, d *Dir, e *engine.Engine) snapshot.Info {
	t.Helper()
	peer, err := snapshot.NewStore(t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(saveSnapshot(t, peer, e).Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := d.Snapshots.Receive(f)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// A peer's snapshot that CheckPeerSnapshot refuses is deleted, and the
// journal stays as it was.
func TestARefusedPeerSnapshotChangesNothing(t *testing.T) {
	d, err := Open(t.TempDir(), Options{Engine: engine.DefaultConfig(), FS: vfs.NewMem(),
		CheckPeerSnapshot: func(m snapshot.Meta, _ *engine.Engine) error { return fmt.Errorf("not signed at %d", m.Index) }})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ents := enginetest.NewLog(23).Entries(40, 5)
	if err := d.Journal.Append(ents[:10]...); err != nil {
		t.Fatal(err)
	}
	info := receive(t, d, reference(t, ents, 40))
	if _, _, err := d.InstallSaved(info); err == nil || !strings.Contains(err.Error(), "not signed at 40") {
		t.Fatalf("install of a refused snapshot: %v", err)
	}
	if _, err := os.Stat(info.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused snapshot is still there: %v", err)
	}
	if d.Journal.First() != 1 || d.Journal.Last() != 10 {
		t.Fatalf("journal %d..%d after the refusal, want 1..10", d.Journal.First(), d.Journal.Last())
	}
}
