// Package datadir owns a node's data directory and brings the node back to
// where it was after a restart:
//
//	<dir>/journal/    the Pebble journal (package journal)
//	<dir>/snapshots/  snapshot files (package snapshot)
//
// After Recover or InstallSaved the engine has applied exactly the journal's
// entries: engine.Index() == journal.Last(). The replica loop keeps that
// true by appending to the journal before applying.
package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/journal"
	"github.com/zkbank/zkbank/snapshot"
)

// ErrNoStart means the journal was trimmed and no usable snapshot covers
// the gap: the node needs a snapshot from a peer (InstallSaved).
var ErrNoStart = errors.New("datadir: journal starts after index 1 and no usable snapshot covers it")

// Options configure Open.
type Options struct {
	Engine engine.Config
	Retain int    // snapshots kept; default 3
	FS     vfs.FS // journal filesystem; nil for the real one (tests crash a memory FS)
	// Decode reads the journal's entries (journal.Options.Decode).
	Decode func(raw []byte) (*engine.Entry, error)
	// CheckPeerSnapshot, when set, judges a peer's snapshot once loaded
	// and before anything else changes (InstallSaved): its signature.
	CheckPeerSnapshot func(snapshot.Meta, *engine.Engine) error
}

// Dir is an open data directory.
type Dir struct {
	Path      string
	Journal   *journal.Journal
	Snapshots *snapshot.Store
	cfg       engine.Config
	checkPeer func(snapshot.Meta, *engine.Engine) error
}

// Open opens (creating if needed) the data directory at path.
func Open(path string, opts Options) (*Dir, error) {
	if err := opts.Engine.Validate(); err != nil {
		return nil, err
	}
	snaps, err := snapshot.NewStore(filepath.Join(path, "snapshots"), opts.Retain)
	if err != nil {
		return nil, err
	}
	j, err := journal.Open(filepath.Join(path, "journal"), journal.Options{FS: opts.FS, Decode: opts.Decode})
	if err != nil {
		return nil, err
	}
	return &Dir{Path: path, Journal: j, Snapshots: snaps, cfg: opts.Engine, checkPeer: opts.CheckPeerSnapshot}, nil
}

// Close closes the journal.
func (d *Dir) Close() error { return d.Journal.Close() }

// Skipped is a snapshot Recover could not use, and why.
type Skipped struct {
	Info snapshot.Info
	Err  error
}

// Recovery reports what Recover did.
type Recovery struct {
	Engine   *engine.Engine
	From     *snapshot.Info // the snapshot started from; nil when from index 0
	Skipped  []Skipped      // newer snapshots that were corrupt or did not fit
	Replayed uint64         // journal entries applied on top
}

// Recover loads the newest usable snapshot (falling back to older ones),
// replays the journal above it, and returns the engine at the journal's
// last index. progress, if not nil, gets (index, last) while replaying.
func (d *Dir) Recover(progress func(index, last uint64)) (*Recovery, error) {
	rec := &Recovery{}
	list, err := d.Snapshots.List()
	if err != nil {
		return nil, err
	}
	for i := range list {
		e, err := d.fromSnapshot(list[i])
		if err != nil {
			rec.Skipped = append(rec.Skipped, Skipped{Info: list[i], Err: err})
			continue
		}
		rec.Engine, rec.From = e, &list[i]
		break
	}
	if rec.Engine == nil {
		if base, _ := d.Journal.Base(); base != 0 {
			return rec, fmt.Errorf("%w (journal starts at %d)", ErrNoStart, base+1)
		}
		rec.Engine, _ = engine.New(d.cfg)
	}
	start := rec.Engine.Index()
	err = d.Journal.Replay(rec.Engine, 0, func(index uint64) {
		if progress != nil {
			progress(index, d.Journal.Last())
		}
	})
	rec.Replayed = rec.Engine.Index() - start
	if err != nil {
		return rec, fmt.Errorf("datadir: recover: %w", err)
	}
	return rec, nil
}

// fromSnapshot loads one snapshot and lines the journal up with it.
func (d *Dir) fromSnapshot(info snapshot.Info) (*engine.Engine, error) {
	if base, _ := d.Journal.Base(); info.Index < base {
		return nil, fmt.Errorf("journal was trimmed to start at %d, past the snapshot", base+1)
	}
	e, meta, err := snapshot.Load(info.Path, d.cfg)
	if err != nil {
		return nil, err
	}
	if err := d.alignJournal(&meta); err != nil {
		return nil, err
	}
	return e, nil
}

// alignJournal checks that the journal agrees with a snapshot at the
// snapshot's index, or resets the journal to continue after the snapshot
// when it does not reach that far.
func (d *Dir) alignJournal(m *snapshot.Meta) error {
	base, baseHash := d.Journal.Base()
	switch {
	case m.Index == base:
		if baseHash != m.EntryHash {
			return fmt.Errorf("snapshot at %d does not match the journal's base hash", m.Index)
		}
	case m.Index <= d.Journal.Last():
		ent, err := d.Journal.Get(m.Index)
		if err != nil {
			return err
		}
		if ent.Hash() != m.EntryHash {
			return fmt.Errorf("snapshot at %d does not match the journal's entry (a fork)", m.Index)
		}
	default:
		return d.Journal.Reset(m.Index, m.EntryHash)
	}
	return nil
}

// InstallSaved installs a peer's snapshot already in the store (see
// snapshot.Store.Receive): it restores the engine from the file, lines
// the journal up with it and replays what the journal holds past it. A
// snapshot that fails to load, or that Options.CheckPeerSnapshot refuses,
// is deleted before anything else changes.
func (d *Dir) InstallSaved(info snapshot.Info) (*engine.Engine, snapshot.Meta, error) {
	e, meta, err := snapshot.Load(info.Path, d.cfg)
	if err == nil && d.checkPeer != nil {
		err = d.checkPeer(meta, e)
	}
	if err != nil {
		os.Remove(info.Path)
		return nil, meta, fmt.Errorf("datadir: install snapshot %d: %w", info.Index, err)
	}
	if err := d.alignJournal(&meta); err != nil {
		// A journal that disagrees with the cluster's snapshot has forked:
		// it is replaced by what the cluster agreed on.
		if err := d.Journal.Reset(meta.Index, meta.EntryHash); err != nil {
			return nil, meta, fmt.Errorf("datadir: install snapshot %d: %w", meta.Index, err)
		}
	}
	if err := d.Journal.Replay(e, 0, nil); err != nil {
		return nil, meta, fmt.Errorf("datadir: install snapshot %d: %w", meta.Index, err)
	}
	return e, meta, nil
}
