package audit

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/enginetest"
	"github.com/zkbank/zkbank/journal/datadir"
)

// writeDataDir journals entries 1..count into a new data dir, with a
// snapshot every `every` entries; trimBelow > 0 trims the journal. It
// returns the engine that applied the same entries in memory.
func writeDataDir(t *testing.T, count, every int, trimBelow uint64) (string, *engine.Engine) {
	t.Helper()
	dir := t.TempDir()
	d, err := datadir.Open(dir, datadir.Options{Retain: 100, Engine: engine.DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	e, _ := engine.New(engine.DefaultConfig())
	for i, ent := range enginetest.NewLog(1).Entries(count, 20) {
		if err := d.Journal.Append(ent); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Apply(ent); err != nil {
			t.Fatal(err)
		}
		if (i+1)%every == 0 {
			if _, err := d.Snapshots.Save(e, time.Now().UnixMilli()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if trimBelow > 0 {
		if err := d.Journal.TrimBelow(trimBelow); err != nil {
			t.Fatal(err)
		}
	}
	return dir, e
}

func TestReplayMatchesTheEngineAndEverySnapshot(t *testing.T) {
	for _, trim := range []uint64{0, 101} {
		dir, want := writeDataDir(t, 300, 50, trim)
		var progressed uint64
		r, err := Replay(dir, Options{Progress: func(done, total uint64) { progressed = done }})
		if err != nil {
			t.Fatalf("trim %d: %v", trim, err)
		}
		if r.StateHash != want.StateHash() || r.Index != 300 || r.Totals != want.Totals() || progressed != 300-r.From {
			t.Fatalf("trim %d: report %+v, engine at %d %s", trim, r, want.Index(), want.StateHash())
		}
		wantFrom, wantChecked := uint64(0), 6
		if trim > 0 {
			wantFrom, wantChecked = 100, 4 // the snapshot at the trimmed journal's base
		}
		if r.From != wantFrom || len(r.Snapshots) != wantChecked {
			t.Fatalf("trim %d: started at %d and checked %d snapshots", trim, r.From, len(r.Snapshots))
		}
		if r.Commands != (300-r.From)*20 || r.Outcomes["ok"] == 0 {
			t.Fatalf("outcomes %v over %d commands", r.Outcomes, r.Commands)
		}
	}
	// --to stops early, and its snapshot still matches.
	dir, _ := writeDataDir(t, 120, 50, 0)
	if r, err := Replay(dir, Options{To: 100}); err != nil || r.Index != 100 || len(r.Snapshots) != 2 {
		t.Fatalf("--to 100: %+v %v", r, err)
	}
}

func TestTamperedJournalEntryIsDetected(t *testing.T) {
	dir, _ := writeDataDir(t, 60, 1000, 0)
	db, err := pebble.Open(filepath.Join(dir, "journal"), &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 9)
	key[0] = 'e'
	binary.BigEndian.PutUint64(key[1:], 30)
	ent, err := enginetest.NewLog(1).Entries(30, 20)[29], nil
	tampered := *ent
	tampered.Commands = append([]engine.Command(nil), ent.Commands...)
	tampered.Commands[0].Amount++ // a re-encoded entry that still decodes
	raw, err := engine.EncodeEntry(&tampered)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(key, raw, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Replay(dir, Options{}); !errors.Is(err, ErrMismatch) {
		t.Fatalf("replay of a tampered journal: %v", err)
	}
}

func TestFlippedSnapshotByteIsDetected(t *testing.T) {
	dir, _ := writeDataDir(t, 100, 50, 0)
	snaps, _ := os.ReadDir(filepath.Join(dir, "snapshots"))
	path := filepath.Join(dir, "snapshots", snaps[0].Name())
	b, _ := os.ReadFile(path)
	b[len(b)/2] ^= 0x01
	os.WriteFile(path, b, 0o644)
	r, err := Replay(dir, Options{})
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("replay over a flipped snapshot: %v", err)
	}
	bad := 0
	for _, c := range r.Snapshots {
		if !c.OK {
			bad++
		}
	}
	if bad != 1 {
		t.Fatalf("snapshot checks %+v", r.Snapshots)
	}
}
