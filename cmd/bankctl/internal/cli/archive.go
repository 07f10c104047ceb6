package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/zkbank/zkbank/cmd/internal/audit"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/journal"
	"github.com/zkbank/zkbank/snapshot"
)

type archiveOutput struct {
	File     string `json:"file"`
	From     uint64 `json:"from"`
	To       uint64 `json:"to"`
	Bytes    int64  `json:"bytes"`
	LastHash string `json:"last_hash"`
}

func (a *app) journalArchive() *cobra.Command {
	var dir, out string
	var below uint64
	cmd := &cobra.Command{
		Use:   "archive --data-dir DIR --below INDEX --out FILE",
		Short: "Move a stopped node's oldest journal entries into an archive file",
		Long: `Write the journal's entries from its first up to (not including) --below
into FILE, as the log's bytes, verify the file by reading it back, and
only then delete those entries from the journal. An auditor replays the
archives with the journal (bankctl journal replay --archive FILE ...),
and statements read them (bankctl journal history --archive FILE ...).
Archives chain: each starts where the one before (or the journal)
ended, so keep them all, in order. The journal keeps at least its oldest
snapshot's entry, so that the node restarts from it: --below is at most
that snapshot's index + 1. Stop the node first (Pebble locks the
journal); FILE must not exist.`,
		Example: `  bankctl journal archive --data-dir /var/lib/bankd --below 1000001 --out /archive/n1-000001.zka`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if below < 2 {
				return usageError{fmt.Errorf("--below %d: give the first index to keep (at least 2)", below)}
			}
			trust, err := a.trust(&a.sealed)
			if err != nil {
				return err
			}
			d, err := audit.Open(dir, trust)
			if err != nil {
				return err
			}
			defer d.Close()
			snaps, err := d.Snapshots.List()
			if err != nil {
				return err
			}
			if err := archiveLimit(snaps, d.Journal, below); err != nil {
				return err
			}
			decode := (func([]byte) (*engine.Entry, error))(nil)
			if trust != nil {
				decode = trust.DecodeRaw
			}
			info, size, err := writeArchive(d.Journal, below-1, out, decode)
			if err != nil {
				return err
			}
			if err := d.Journal.TrimBelow(below); err != nil {
				return fmt.Errorf("the archive %s is whole, but trimming the journal failed: %w", out, err)
			}
			res := archiveOutput{File: out, From: info.From, To: info.To, Bytes: size, LastHash: info.LastHash.String()}
			if done, err := a.showJSON(res); done {
				return err
			}
			fmt.Fprintf(a.stdout, "archived entries %d to %d (%d bytes) into %s; the journal now starts at %d\n", res.From, res.To, res.Bytes, out, below)
			return nil
		},
	}
	a.dataDirFlag(cmd, &dir)
	cmd.Flags().Uint64Var(&below, "below", 0, "the first index the journal keeps")
	cmd.Flags().StringVar(&out, "out", "", "the archive file to write (must not exist)")
	cmd.MarkFlagRequired("below")
	cmd.MarkFlagRequired("out")
	return cmd
}

// archiveLimit refuses to archive past the oldest snapshot, or what the
// journal does not hold.
func archiveLimit(snaps []snapshot.Info, j *journal.Journal, below uint64) error {
	if below <= j.First() || below > j.Last()+1 {
		return usageError{fmt.Errorf("--below %d: the journal holds %d to %d; give an index above %d", below, j.First(), j.Last(), j.First())}
	}
	if len(snaps) == 0 {
		return usageError{errors.New("this data dir has no snapshot: the node would have nothing to restart from; archive after its first snapshot")}
	}
	if oldest := snaps[len(snaps)-1].Index; below > oldest+1 {
		return usageError{fmt.Errorf("--below %d: the oldest snapshot is at %d, and the node restarts from it; archive below %d at most", below, oldest, oldest+1)}
	}
	return nil
}

// writeArchive writes the journal's entries up to to into path, synced,
// and reads it back before it counts.
func writeArchive(j *journal.Journal, to uint64, path string, decode func([]byte) (*engine.Entry, error)) (journal.ArchiveInfo, int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return journal.ArchiveInfo{}, 0, err
	}
	info, err := j.Archive(f, to)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = verifyArchive(path, info, decode)
	}
	if err != nil {
		os.Remove(path)
		return info, 0, fmt.Errorf("archive %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return info, 0, err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return info, st.Size(), nil
}

// verifyArchive reads the written file back: the same entries, chained.
func verifyArchive(path string, want journal.ArchiveInfo, decode func([]byte) (*engine.Entry, error)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	got, err := journal.ReadArchive(f, decode, func(*engine.Entry) error { return nil })
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("read back %+v, wrote %+v", got, want)
	}
	return nil
}
