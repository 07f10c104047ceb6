// Package journal is a node's durable local copy of the operations log: the
// committed entries, byte for byte as they came from ZooKeeper, in Pebble.
//
// Keys (all big-endian so that Pebble's order is index order):
//
//	"e" + uint64 index  -> the encoded entry (engine.Entry.Raw)
//	"b"                 -> base: uint64 index + [32]byte hash of the entry
//	                       just below the first stored one (0 and zero hash
//	                       for a journal that starts at index 1)
//
// The journal only ever holds a contiguous, hash-chained run of entries
// base+1..last: Append refuses anything else. It knows nothing about
// ZooKeeper or HTTP.
package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/internal/pebblelog"
)

// Errors. Each is wrapped with the detail of the case.
var (
	// ErrOutOfOrder: an appended entry's index is not last+1.
	ErrOutOfOrder = errors.New("journal: entry is not the next index")
	// ErrChainBroken: an appended entry's prev_hash is not the last hash.
	ErrChainBroken = errors.New("journal: entry does not chain to the last entry")
	// ErrNotFound: the index is outside base+1..last (trimmed or not yet
	// written).
	ErrNotFound = errors.New("journal: no such entry")
	// ErrCorrupt: stored bytes do not decode or do not chain.
	ErrCorrupt = errors.New("journal: corrupt")
)

var baseKey = []byte("b")

const entryPrefix = 'e'

func entryKey(index uint64) []byte {
	k := make([]byte, 9)
	k[0] = entryPrefix
	binary.BigEndian.PutUint64(k[1:], index)
	return k
}

// Options configure Open.
type Options struct {
	// FS is the filesystem; nil means the real one. Tests pass Pebble's
	// in-memory, crashable filesystem.
	FS vfs.FS
	// Logger receives Pebble's own messages; nil discards them. Failures
	// are returned as errors either way.
	Logger pebble.Logger
	// Decode turns stored bytes into an entry; nil means
	// engine.DecodeEntry. A sealed log's journal keeps the log's bytes, so
	// it needs the data keys (seal.Trust.DecodeRaw).
	Decode func(raw []byte) (*engine.Entry, error)
}

// Journal is the local log. Its methods are safe for concurrent use; the
// position (base, last) is guarded so that readers such as a status page
// can ask for it while the replica loop appends. Append, TrimBelow and
// Reset are meant for one writer goroutine.
type Journal struct {
	db     *pebble.DB
	decode func(raw []byte) (*engine.Entry, error)

	mu       sync.RWMutex
	base     uint64
	baseHash engine.Hash
	last     uint64
	lastHash engine.Hash
}

// Open opens or creates the journal in dir and checks that its tail is
// consistent.
func Open(dir string, opts Options) (*Journal, error) {
	po := &pebble.Options{FS: opts.FS, Logger: opts.Logger}
	if po.FS == nil {
		po.FS = vfs.Default
	}
	if po.Logger == nil {
		po.Logger = pebblelog.Quiet{}
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("journal: open %s: %w", dir, err)
	}
	j := &Journal{db: db, decode: opts.Decode}
	if j.decode == nil {
		j.decode = engine.DecodeEntry
	}
	if err := j.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("journal: open %s: %w", dir, err)
	}
	return j, nil
}

// load reads the base and the last entry.
func (j *Journal) load() error {
	if err := j.loadBase(); err != nil {
		return err
	}
	j.last, j.lastHash = j.base, j.baseHash
	it, err := j.db.NewIter(entryBounds(0, ^uint64(0)))
	if err != nil {
		return err
	}
	defer it.Close()
	if !it.Last() {
		return it.Error()
	}
	index := binary.BigEndian.Uint64(it.Key()[1:])
	if index <= j.base {
		return fmt.Errorf("%w: entry %d at or below base %d", ErrCorrupt, index, j.base)
	}
	j.last = index
	j.lastHash = engine.HashBytes(it.Value())
	return nil
}

func (j *Journal) loadBase() error {
	v, closer, err := j.db.Get(baseKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	if len(v) != 8+len(engine.Hash{}) {
		return fmt.Errorf("%w: base record of %d bytes", ErrCorrupt, len(v))
	}
	j.base = binary.BigEndian.Uint64(v)
	copy(j.baseHash[:], v[8:])
	return nil
}

func encodeBase(index uint64, h engine.Hash) []byte {
	v := make([]byte, 8+len(h))
	binary.BigEndian.PutUint64(v, index)
	copy(v[8:], h[:])
	return v
}

// entryBounds limits an iterator to entries lo..hi inclusive.
func entryBounds(lo, hi uint64) *pebble.IterOptions {
	upper := entryKey(hi)
	if hi == ^uint64(0) {
		upper = []byte{entryPrefix + 1}
	} else {
		binary.BigEndian.PutUint64(upper[1:], hi+1)
	}
	return &pebble.IterOptions{LowerBound: entryKey(lo), UpperBound: upper}
}

// Close closes the journal.
func (j *Journal) Close() error {
	if err := j.db.Close(); err != nil {
		return fmt.Errorf("journal: close: %w", err)
	}
	return nil
}

// First is the lowest stored index; it is Last()+1 when the journal is
// empty.
func (j *Journal) First() uint64 {
	base, _ := j.Base()
	return base + 1
}

// Last is the highest stored index, or the base when empty.
func (j *Journal) Last() uint64 {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return j.last
}

// LastHash is the hash of the entry at Last (the base hash when empty).
func (j *Journal) LastHash() engine.Hash {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return j.lastHash
}

// Base is the index and hash of the entry just below First.
func (j *Journal) Base() (uint64, engine.Hash) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return j.base, j.baseHash
}

// position returns base and last together.
func (j *Journal) position() (base, last uint64) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return j.base, j.last
}

// Append durably appends entries that must continue the journal: each
// index is last+1 and each prev_hash is the hash of the entry before. All
// are written in one synced batch, or none is.
func (j *Journal) Append(ents ...*engine.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	last, lastHash := j.Last(), j.LastHash()
	b := j.db.NewBatch()
	defer b.Close()
	for _, e := range ents {
		if e.Index != last+1 {
			return fmt.Errorf("journal: append %d: %w (last is %d)", e.Index, ErrOutOfOrder, last)
		}
		if e.PrevHash != lastHash {
			return fmt.Errorf("journal: append %d: %w: prev_hash %s, last hash %s", e.Index, ErrChainBroken, e.PrevHash, lastHash)
		}
		if len(e.Raw()) == 0 {
			return fmt.Errorf("journal: append %d: entry was never encoded", e.Index)
		}
		if err := b.Set(entryKey(e.Index), e.Raw(), nil); err != nil {
			return fmt.Errorf("journal: append %d: %w", e.Index, err)
		}
		last, lastHash = e.Index, e.Hash()
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("journal: append %d..%d: %w", ents[0].Index, last, err)
	}
	j.mu.Lock()
	j.last, j.lastHash = last, lastHash
	j.mu.Unlock()
	return nil
}

// GetRaw returns the stored bytes of the entry at index.
func (j *Journal) GetRaw(index uint64) ([]byte, error) {
	if base, last := j.position(); index <= base || index > last {
		return nil, fmt.Errorf("journal: get %d: %w (have %d..%d)", index, ErrNotFound, base+1, last)
	}
	v, closer, err := j.db.Get(entryKey(index))
	if err != nil {
		return nil, fmt.Errorf("journal: get %d: %w", index, err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

// Get returns the decoded entry at index.
func (j *Journal) Get(index uint64) (*engine.Entry, error) {
	raw, err := j.GetRaw(index)
	if err != nil {
		return nil, err
	}
	e, err := j.decode(raw)
	if err != nil {
		return nil, fmt.Errorf("journal: get %d: %w: %w", index, ErrCorrupt, err)
	}
	return e, nil
}

// Iterate calls fn with each entry from..to (inclusive; to 0 means Last) in
// index order, verifying that each continues the one before. It stops at
// the first error, from fn or from a damaged journal.
func (j *Journal) Iterate(from, to uint64, fn func(*engine.Entry) error) error {
	base, last := j.position()
	if to == 0 || to > last {
		to = last
	}
	if from <= base {
		return fmt.Errorf("journal: iterate from %d: %w (first is %d)", from, ErrNotFound, base+1)
	}
	if from > to {
		return nil
	}
	it, err := j.db.NewIter(entryBounds(from, to))
	if err != nil {
		return fmt.Errorf("journal: iterate: %w", err)
	}
	defer it.Close()
	c := chain{next: from, decode: j.decode}
	for ok := it.First(); ok; ok = it.Next() {
		e, err := c.check(it.Key(), it.Value())
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("journal: iterate: %w", err)
	}
	if c.next != to+1 {
		return fmt.Errorf("journal: iterate: %w: entries end at %d, want %d", ErrCorrupt, c.next-1, to)
	}
	return nil
}

// chain verifies, while iterating, that keys are contiguous, values decode
// and each entry's prev_hash is the hash of the one before.
type chain struct {
	decode   func(raw []byte) (*engine.Entry, error)
	next     uint64
	prevHash *engine.Hash // nil until the first entry is seen
}

func (c *chain) check(key, value []byte) (*engine.Entry, error) {
	index := binary.BigEndian.Uint64(key[1:])
	if index != c.next {
		return nil, fmt.Errorf("journal: %w: entry %d missing (found %d)", ErrCorrupt, c.next, index)
	}
	e, err := c.decode(append([]byte(nil), value...))
	if err != nil {
		return nil, fmt.Errorf("journal: entry %d: %w: %w", index, ErrCorrupt, err)
	}
	if e.Index != index || (c.prevHash != nil && e.PrevHash != *c.prevHash) {
		return nil, fmt.Errorf("journal: entry %d: %w: does not chain", index, ErrCorrupt)
	}
	h := e.Hash()
	c.prevHash = &h
	c.next++
	return e, nil
}
