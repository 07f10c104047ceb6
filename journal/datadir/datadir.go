// Package datadir owns a node's data directory and brings the node back to
// where it was after a restart:
//
//	<dir>/journal/    the Pebble journal (package journal)
//	<dir>/snapshots/  snapshot files (package snapshot)
//	<dir>/keys/       idempotency records older than the window (package keystore)
//	<dir>/history/    every applied command's event, by account (package history)
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
	"github.com/zkbank/zkbank/history"
	"github.com/zkbank/zkbank/journal"
	"github.com/zkbank/zkbank/keystore"
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
	Keys      *keystore.Store // every apply goes through it (Apply)
	History   *history.Store  // every apply adds to it (Apply)
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
	keys, err := keystore.Open(filepath.Join(path, "keys"), keystore.Options{FS: opts.FS, RetainMs: opts.Engine.KeyRetainMs})
	if err != nil {
		j.Close()
		return nil, err
	}
	hist, err := history.Open(filepath.Join(path, "history"), history.Options{FS: opts.FS})
	if err != nil {
		j.Close()
		keys.Close()
		return nil, err
	}
	return &Dir{Path: path, Journal: j, Snapshots: snaps, Keys: keys, History: hist, cfg: opts.Engine, checkPeer: opts.CheckPeerSnapshot}, nil
}

// Close closes the journal and the stores beside it.
func (d *Dir) Close() error { return errors.Join(d.Journal.Close(), d.Keys.Close(), d.History.Close()) }

// Apply applies ent to e through the key store and adds its events to
// the history: every apply of a node, the replica loop's and a replay's.
func (d *Dir) Apply(e *engine.Engine, ent *engine.Entry) ([]engine.Result, error) {
	return d.History.Apply(d.Keys.Apply, e, ent)
}

// SyncStores makes durable what the key store and the history hold up to
// index, before a snapshot at index is committed: a replay from it needs
// them whole below it.
func (d *Dir) SyncStores(index uint64) error {
	return errors.Join(d.Keys.Sync(index), d.History.Sync())
}

// SaveSnapshot writes a snapshot of e now, once the stores beside the
// journal hold, on disk, what a replay from it needs. It is for a node
// that is not applying (a restore); the replica loop writes its snapshots
// beside the loop, syncing the stores the same way.
func (d *Dir) SaveSnapshot(e *engine.Engine, createdMs int64) (snapshot.Info, error) {
	if err := d.SyncStores(e.Index()); err != nil {
		return snapshot.Info{}, err
	}
	return d.Snapshots.Save(e, createdMs)
}

// replay applies the journal above e's index, the history continuing
// from there or starting again.
func (d *Dir) replay(e *engine.Engine, progress func(index uint64)) error {
	if err := d.History.Begin(e.Index()); err != nil {
		return err
	}
	return d.Journal.Replay(e, d, 0, progress)
}

// ErrKeysMissing: the key store does not hold what a replay from the
// snapshot needs (it was lost, reset, or a peer's records were not all
// imported); a node then starts from another snapshot or a peer's.
var ErrKeysMissing = errors.New("datadir: the key store does not hold the idempotency records of the snapshot")

// CheckKeys refuses a state of a log that remembers keys by time when the
// key store does not vouch for it: a replay from it could answer a retry
// as new.
func (d *Dir) CheckKeys(e *engine.Engine) error {
	if e.BodyVersion() < engine.BodyV6 || d.Keys.Vouches(e.Index()) {
		return nil
	}
	return fmt.Errorf("%w (index %d)", ErrKeysMissing, e.Index())
}

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
	err = d.replay(rec.Engine, func(index uint64) {
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
	if err := d.CheckKeys(e); err != nil {
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
// snapshot.Store.Receive), the peer's key records already imported
// (keystore.Store.Import): it restores the engine from the file, lines
// the journal up with it and replays what the journal holds past it. A
// snapshot that fails to load, or that Options.CheckPeerSnapshot refuses,
// is deleted before anything else changes.
func (d *Dir) InstallSaved(info snapshot.Info) (*engine.Engine, snapshot.Meta, error) {
	e, meta, err := snapshot.Load(info.Path, d.cfg)
	if err == nil && d.checkPeer != nil {
		err = d.checkPeer(meta, e)
	}
	if err == nil {
		err = d.CheckKeys(e)
	}
	if err != nil {
		os.Remove(info.Path)
		return nil, meta, fmt.Errorf("datadir: install snapshot %d: %w", info.Index, err)
	}
	if err := d.alignJournal(&meta); err != nil {
		// A journal that disagrees with the cluster's snapshot has forked:
		// it is replaced by what the cluster agreed on, and the key store,
		// which may hold records of the fork, starts again empty: the node
		// imports the peer's records again and installs once more.
		if err := errors.Join(d.Journal.Reset(meta.Index, meta.EntryHash), d.History.Reset(meta.Index)); err != nil {
			return nil, meta, fmt.Errorf("datadir: install snapshot %d: %w", meta.Index, err)
		}
		if e.BodyVersion() >= engine.BodyV6 {
			os.Remove(info.Path)
			if err := d.Keys.Reset(); err != nil {
				return nil, meta, fmt.Errorf("datadir: install snapshot %d: %w", meta.Index, err)
			}
			return nil, meta, fmt.Errorf("datadir: install snapshot %d: %w (the journal forked; the key store was emptied)", meta.Index, ErrKeysMissing)
		}
	}
	if err := d.replay(e, nil); err != nil {
		return nil, meta, fmt.Errorf("datadir: install snapshot %d: %w", meta.Index, err)
	}
	return e, meta, nil
}
