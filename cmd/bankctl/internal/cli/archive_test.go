package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/journal/datadir"
)

// bankctl runs one bankctl command in this process, with JSON output.
func bankctl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errs bytes.Buffer
	a := &app{stdout: &out, stderr: &errs, stdin: strings.NewReader("")}
	root := a.rootCommand()
	root.SetArgs(append(args, "-o", "json"))
	err := root.Execute()
	return out.String(), err
}

// snapshotAt leaves a snapshot of the journal's state at index in dir.
func snapshotAt(t *testing.T, dir string, index uint64) {
	t.Helper()
	d, err := datadir.Open(dir, datadir.Options{Engine: engine.DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	e, _ := engine.New(engine.DefaultConfig())
	if err := d.Journal.Replay(e, d, index, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := d.SaveSnapshot(e, 0); err != nil {
		t.Fatal(err)
	}
}

// TestAnArchiveTakesTheJournalsOldestEntries: archived, the entries leave
// the journal; a replay with the archive starts from index 1 and reaches
// the state a replay from the snapshot does, and the statement goes back
// to the account's creation. Archiving past the oldest snapshot, over a
// file, or replaying a damaged archive is refused.
func TestAnArchiveTakesTheJournalsOldestEntries(t *testing.T) {
	entries := [][]engine.Command{{{Op: engine.OpCreateAccount, Key: "c", Account: "H1", Name: "Hal", Amount: 10}}}
	for i := range 9 {
		entries = append(entries, []engine.Command{{Op: engine.OpDeposit, Key: "d" + string(rune('a'+i)), Account: "H1", Amount: 1}})
	}
	dir := writeJournal(t, entries...)
	snapshotAt(t, dir, 6)
	file := filepath.Join(t.TempDir(), "n1-1.zka")

	if _, err := bankctl(t, "journal", "archive", "--data-dir", dir, "--below", "8", "--out", file); err == nil || !strings.Contains(err.Error(), "oldest snapshot is at 6") {
		t.Fatalf("archiving past the oldest snapshot: %v", err)
	}
	out, err := bankctl(t, "journal", "archive", "--data-dir", dir, "--below", "7", "--out", file)
	var res archiveOutput
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || res.From != 1 || res.To != 6 || res.Bytes == 0 {
		t.Fatalf("archive: %v %s", err, out)
	}
	if _, err := bankctl(t, "journal", "archive", "--data-dir", dir, "--below", "7", "--out", file); err == nil {
		t.Fatal("archived over an existing file, or below the journal's first entry")
	}

	var fromSnap, fromArchive replayOutput
	out, err = bankctl(t, "journal", "replay", "--data-dir", dir)
	if err != nil || json.Unmarshal([]byte(out), &fromSnap) != nil || fromSnap.From != 6 {
		t.Fatalf("replay without the archive: %v %s", err, out)
	}
	out, err = bankctl(t, "journal", "replay", "--data-dir", dir, "--archive", file)
	if err != nil || json.Unmarshal([]byte(out), &fromArchive) != nil || fromArchive.From != 0 || fromArchive.Entries != 10 ||
		fromArchive.StateHash != fromSnap.StateHash || fromArchive.TotalBalance != 19 {
		t.Fatalf("replay with the archive: %v %+v; from the snapshot %+v", err, fromArchive, fromSnap)
	}
	var st wire.Statement
	out, err = bankctl(t, "journal", "history", "H1", "--data-dir", dir, "--archive", file)
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || len(st.Lines) != 10 || st.Lines[0].Op != "create_account" || st.Lines[9].Balance != 19 {
		t.Fatalf("statement with the archive: %v %s", err, out)
	}

	raw, _ := os.ReadFile(file)
	raw[len(raw)/2] ^= 1
	bad := filepath.Join(t.TempDir(), "bad.zka")
	os.WriteFile(bad, raw, 0o600)
	if _, err := bankctl(t, "journal", "replay", "--data-dir", dir, "--archive", bad); exitCode(err) != ExitMismatch {
		t.Fatalf("a damaged archive: %v (exit %d)", err, exitCode(err))
	}
}
