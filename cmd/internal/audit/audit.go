// Package audit checks a node's data dir offline: it rebuilds the state
// from the journal (starting from a snapshot when the journal was
// trimmed), verifies the hash chain, compares the state with every
// snapshot it passes, and reports the state hash, totals and outcomes. It
// reads a copy as well as the original (the node must not be running on
// it: Pebble locks the journal).
package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/history"
	"github.com/zkbank/zkbank/journal"
	"github.com/zkbank/zkbank/journal/datadir"
	"github.com/zkbank/zkbank/seal"
	"github.com/zkbank/zkbank/snapshot"
)

// ErrMismatch: the data dir disagrees with itself (a snapshot that does
// not match the replayed state, a broken chain, a corrupt file).
var ErrMismatch = errors.New("audit: mismatch")

// Report is what a replay found.
type Report struct {
	DataDir   string
	From      uint64 // index of the snapshot the replay started from (0: empty state)
	Index     uint64 // last index replayed
	StateHash engine.Hash
	Totals    engine.Totals
	Entries   uint64
	Commands  uint64
	Outcomes  map[string]uint64 // commands by outcome code
	Snapshots []SnapshotCheck   // every snapshot at or below Index
	Verified  uint64            // sealed entries whose signature verified (Options.Trust with Roots)
}

// SnapshotCheck is the comparison of one snapshot with the replay.
type SnapshotCheck struct {
	Index  uint64
	Path   string
	OK     bool
	Detail string
}

// Options of a replay.
type Options struct {
	To       uint64                                               // stop after this index (0: the end)
	Progress func(done, total uint64)                             // called every few thousand entries
	OnApply  func(*engine.Entry, []engine.Result, *engine.Engine) // sees each applied entry
	// Trust opens a sealed journal (its data keys) and, with Roots and
	// Cluster set, verifies every sealed entry's signature before it is
	// applied, as the nodes did.
	Trust *seal.Trust
	// History, when set, takes every replayed entry's events (a
	// statement reads them from it).
	History *history.Store
	// Archives are journal archives (journal.Journal.Archive), in order
	// from index 1: the replay starts from the empty state, applies them,
	// and goes on with the journal where they end.
	Archives []string
}

// Open opens a data dir for reading; it refuses a path that is not one.
// A sealed journal needs trust's data keys (nil for one that is not).
func Open(dir string, trust *seal.Trust) (*datadir.Dir, error) {
	if _, err := os.Stat(filepath.Join(dir, "journal")); err != nil {
		return nil, fmt.Errorf("audit: %s is not a bankd data dir (no journal/): %w", dir, err)
	}
	opts := datadir.Options{Engine: engine.DefaultConfig()}
	if trust != nil {
		opts.Decode = trust.DecodeRaw
	}
	d, err := datadir.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s (is a bankd still running on it? audit a copy): %w", dir, err)
	}
	return d, nil
}

// verifier checks each entry's signature against the state before it, as
// a node does: a cursor from the engine's signer and revocations, made
// again after an entry that revokes a certificate.
type verifier struct {
	trust *seal.Trust
	eng   *engine.Engine
	cur   *seal.Cursor
}

func (v *verifier) check(ent *engine.Entry, r *Report) error {
	if v.trust == nil || v.trust.Roots == nil || ent.BodyVersion < engine.BodyV3 {
		return nil
	}
	if v.cur == nil {
		revoked := func(serial string) bool { _, ok := v.eng.Revoked(serial); return ok }
		cur, err := v.trust.NewCursor(v.eng.Signer(), revoked)
		if err != nil {
			return err
		}
		v.cur = cur
	}
	if err := v.cur.Check(ent); err != nil {
		return err
	}
	if seal.Revokes(ent) {
		v.cur = nil
	}
	r.Verified++
	return nil
}

// Replay rebuilds the state of the data dir at dir: from its journal, or
// from Options.Archives and then the journal.
func Replay(dir string, opts Options) (*Report, error) {
	d, err := Open(dir, opts.Trust)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	snaps, err := d.Snapshots.List()
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	slices.Reverse(snaps) // oldest first
	var e *engine.Engine
	var from uint64
	if len(opts.Archives) > 0 {
		e, err = engine.New(engine.DefaultConfig())
	} else {
		e, from, err = start(d, snaps, opts.Trust)
	}
	if err != nil {
		return nil, err
	}
	to := d.Journal.Last()
	if opts.To != 0 {
		if opts.To < from || opts.To > to {
			return nil, fmt.Errorf("audit: --to %d is outside what this data dir holds (%d..%d)", opts.To, from, to)
		}
		to = opts.To
	}
	r := &Report{DataDir: dir, From: from, Outcomes: map[string]uint64{}}
	p, err := newReplayer(d, e, r, snapshotsAbove(snaps, from, to), opts)
	if err != nil {
		return r, err
	}
	if err := p.archives(opts.Archives, to); err != nil {
		return r, err
	}
	if err := p.journal(to); err != nil {
		return r, err
	}
	r.Index, r.StateHash, r.Totals = e.Index(), e.StateHash(), e.Totals()
	for _, c := range r.Snapshots {
		if !c.OK {
			return r, fmt.Errorf("%w: snapshot %d: %s", ErrMismatch, c.Index, c.Detail)
		}
	}
	return r, nil
}

// replayer applies entries, from archives and the journal, as the nodes
// did, checking each and comparing the state with the snapshots passed.
type replayer struct {
	d       *datadir.Dir
	e       *engine.Engine
	r       *Report
	opts    Options
	v       verifier
	apply   func(*engine.Engine, *engine.Entry) ([]engine.Result, error)
	pending []snapshot.Info
	from    uint64 // the index the replay started after, for progress
}

func newReplayer(d *datadir.Dir, e *engine.Engine, r *Report, pending []snapshot.Info, opts Options) (*replayer, error) {
	p := &replayer{d: d, e: e, r: r, opts: opts, v: verifier{trust: opts.Trust, eng: e}, apply: d.Keys.Apply, pending: pending, from: e.Index()}
	if h := opts.History; h != nil {
		if err := h.Begin(e.Index()); err != nil {
			return nil, err
		}
		p.apply = func(e *engine.Engine, ent *engine.Entry) ([]engine.Result, error) {
			return h.Apply(d.Keys.Apply, e, ent)
		}
	}
	return p, nil
}

// entry applies one entry, which must follow the state.
func (p *replayer) entry(ent *engine.Entry, to uint64) error {
	if ent.Index != p.e.Index()+1 || ent.PrevHash != p.e.LastHash() {
		return fmt.Errorf("%w: entry %d does not continue the state at %d", ErrMismatch, ent.Index, p.e.Index())
	}
	if err := p.v.check(ent, p.r); err != nil {
		return err
	}
	results, err := p.apply(p.e, ent)
	if err != nil {
		return err
	}
	p.r.Entries++
	p.r.Commands += uint64(len(results))
	for _, res := range results {
		p.r.Outcomes[res.Code.String()]++
	}
	if p.opts.OnApply != nil {
		p.opts.OnApply(ent, results, p.e)
	}
	for len(p.pending) > 0 && p.pending[0].Index == ent.Index {
		p.r.Snapshots = append(p.r.Snapshots, compare(p.pending[0], p.e))
		p.pending = p.pending[1:]
	}
	if p.opts.Progress != nil && (p.r.Entries%2048 == 0 || ent.Index == to) {
		p.opts.Progress(ent.Index-p.from, to-p.from)
	}
	return nil
}

// errPastTo stops an archive's replay at Options.To.
var errPastTo = errors.New("audit: past --to")

// archives replays the archive files in order, each continuing the one
// before from index 1, up to to.
func (p *replayer) archives(paths []string, to uint64) error {
	decode := (func([]byte) (*engine.Entry, error))(nil)
	if p.opts.Trust != nil {
		decode = p.opts.Trust.DecodeRaw
	}
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		_, err = journal.ReadArchive(f, decode, func(ent *engine.Entry) error {
			if ent.Index > to {
				return errPastTo
			}
			return p.entry(ent, to)
		})
		f.Close()
		if errors.Is(err, errPastTo) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: archive %s: %w", ErrMismatch, path, err)
		}
	}
	return nil
}

// journal replays the journal above the state, up to to; after archives
// the journal must go on where they end.
func (p *replayer) journal(to uint64) error {
	at := p.e.Index()
	if at >= to {
		return nil
	}
	if base, _ := p.d.Journal.Base(); at < base {
		return fmt.Errorf("%w: the archives end at %d and the journal starts at %d: an archive is missing", ErrMismatch, at, base+1)
	}
	err := p.d.Journal.Iterate(at+1, to, func(ent *engine.Entry) error { return p.entry(ent, to) })
	if err != nil {
		return fmt.Errorf("%w: journal after index %d: %w", ErrMismatch, p.e.Index(), err)
	}
	return nil
}

// start is the engine the replay begins with: empty when the journal
// holds index 1, else the oldest snapshot that verifies and lines up with
// the journal (so that as much of the chain as possible is checked).
// start is the state a replay begins from: empty, or the snapshot the
// trimmed journal starts at (whose signature must verify when trust
// verifies signatures and the state is of a sealed log).
func start(d *datadir.Dir, snaps []snapshot.Info, trust *seal.Trust) (*engine.Engine, uint64, error) {
	base, baseHash := d.Journal.Base()
	if base == 0 {
		e, err := engine.New(engine.DefaultConfig())
		return e, 0, err
	}
	var refused []error
	for _, s := range snaps {
		if s.Index < base || s.Index > d.Journal.Last() {
			continue
		}
		want := baseHash
		if s.Index > base {
			ent, err := d.Journal.Get(s.Index)
			if err != nil {
				continue
			}
			want = ent.Hash()
		}
		e, meta, err := snapshot.Load(s.Path, engine.DefaultConfig())
		if err != nil || meta.EntryHash != want {
			continue
		}
		if err := verifySnapshot(trust, meta, e); err != nil {
			refused = append(refused, err)
			continue
		}
		if err := d.CheckKeys(e); err != nil {
			refused = append(refused, fmt.Errorf("%w: copy the data dir's keys/ with its journal", err))
			continue
		}
		return e, s.Index, nil
	}
	return nil, 0, fmt.Errorf("%w: the journal starts after index %d and no valid snapshot lines up with it: %w", ErrMismatch, base, errors.Join(refused...))
}

// verifySnapshot checks the signature of a snapshot a replay starts from,
// when trust verifies signatures.
func verifySnapshot(trust *seal.Trust, meta snapshot.Meta, e *engine.Engine) error {
	if trust == nil || trust.Roots == nil {
		return nil
	}
	return trust.CheckSnapshot(meta, e)
}

func snapshotsAbove(snaps []snapshot.Info, from, to uint64) []snapshot.Info {
	var out []snapshot.Info
	for _, s := range snaps { // oldest first
		if s.Index > from && s.Index <= to {
			out = append(out, s)
		}
	}
	return out
}

// compare checks one snapshot file against the replayed engine at its
// index.
func compare(s snapshot.Info, e *engine.Engine) SnapshotCheck {
	c := SnapshotCheck{Index: s.Index, Path: s.Path}
	meta, err := snapshot.Verify(s.Path)
	switch {
	case err != nil:
		c.Detail = err.Error()
	case meta.EntryHash != e.LastHash():
		c.Detail = fmt.Sprintf("entry hash %s, the journal has %s", meta.EntryHash, e.LastHash())
	case meta.StateHash != e.StateHash():
		c.Detail = fmt.Sprintf("state hash %s, the replay has %s", meta.StateHash, e.StateHash())
	default:
		c.OK, c.Detail = true, "matches"
	}
	return c
}
