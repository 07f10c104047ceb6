// Package keystore keeps, beside a node's journal, the idempotency records
// that left the engine's in-memory window while their keys are still
// remembered by log time (engine.Config.KeyRetainMs, from body version 6).
// Every apply goes through Store.Apply: it looks up the records of the
// entry's keys the window lacks (prefetch), hands them to the engine, and
// keeps what the engine spilled. The engine decides what a record means,
// so the store may hold more than the engine needs (records of entries
// not yet applied, of a replay from an older snapshot) without changing
// any answer.
//
// Keys, in Pebble:
//
//	"k" + scoped key          -> every record of the key, newest first
//	                             (a key is used anew once its span passed)
//	"g" + uint64 index + seq  -> what the entry at index spilled: its
//	                             effective time, its records' newest
//	                             first-use time, and their (key, index)
//	"m"                       -> uvarint from | uvarint to: the snapshots
//	                             the store vouches for (Vouches)
//
// The store needs no write-ahead log: what it holds past a node's newest
// snapshot, the replay from that snapshot spills again. Sync makes it
// durable before a snapshot is committed, and says so in "m"; a node
// starts only from a snapshot the store vouches for, so a lost or
// half-imported store never answers a retry as new.
package keystore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/internal/pebblelog"
	"github.com/zkbank/zkbank/internal/varint"
)

// ErrCorrupt: stored bytes are not what the store writes.
var ErrCorrupt = errors.New("keystore: corrupt")

const (
	recordPrefix = 'k'
	spillPrefix  = 'g'
)

func recordKey(scoped string) []byte { return append([]byte{recordPrefix}, scoped...) }

func spillKey(index, seq uint64) []byte {
	k := make([]byte, 17)
	k[0] = spillPrefix
	binary.BigEndian.PutUint64(k[1:], index)
	binary.BigEndian.PutUint64(k[9:], seq)
	return k
}

// Memory the store may take: the block cache keeps the tables' filters
// and indexes (a lookup of a new key reads no more); the memtable takes
// the newest records.
const (
	cacheBytes = 128 << 20
	tableBytes = 8 << 20
)

// Options configure Open.
type Options struct {
	// FS is the filesystem; nil means the real one.
	FS vfs.FS
	// RetainMs is the engine's KeyRetainMs: what collection keeps.
	RetainMs int64
}

// Store is the on-disk half of the idempotency memory. Apply (and the
// collection it does), Import and Reset are for one goroutine, the one
// that applies entries; Sync, Vouches, CollectBelow, Export and DiskBytes
// may run beside it.
type Store struct {
	db        *pebble.DB
	retainMs  int64
	collect   atomic.Uint64 // collection's target: the oldest snapshot index kept (0: none)
	collector collector

	mu       sync.Mutex
	from, to uint64 // the snapshots vouched for: from <= index <= to
}

// Open opens or creates the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	po := &pebble.Options{FS: opts.FS, Logger: pebblelog.Quiet{}, DisableWAL: true, Merger: recordsMerger}
	if po.FS == nil {
		po.FS = vfs.Default
	}
	// Nearly every lookup is of a new key: a Bloom filter per table answers
	// most of them without reading the table, and tables stay small, so
	// that each filter is small enough for the cache to keep.
	po.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	for i := range po.TargetFileSizes {
		po.TargetFileSizes[i] = tableBytes
	}
	cache := pebble.NewCache(cacheBytes)
	defer cache.Unref()
	po.Cache, po.MemTableSize = cache, tableBytes
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("keystore: open %s: %w", dir, err)
	}
	s := &Store{db: db, retainMs: opts.RetainMs}
	if err := s.loadVouched(); err != nil {
		db.Close()
		return nil, fmt.Errorf("keystore: open %s: %w", dir, err)
	}
	return s, nil
}

// OpenMem is a store in memory, for a replay that starts from nothing (it
// spills, and finds, every record itself).
func OpenMem(retainMs int64) *Store {
	s, err := Open("", Options{FS: vfs.NewMem(), RetainMs: retainMs})
	if err != nil {
		panic(err) // an in-memory Pebble does not fail to open
	}
	return s
}

// Close writes what is in memory to disk, so that a node that stops and
// starts again spills nothing twice, and closes the store.
func (s *Store) Close() error {
	if err := errors.Join(s.db.Flush(), s.db.Close()); err != nil {
		return fmt.Errorf("keystore: close: %w", err)
	}
	return nil
}

var vouchKey = []byte("m")

func (s *Store) loadVouched() error {
	v, closer, err := s.db.Get(vouchKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil // a new store: it holds what every snapshot before index 1 needs
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	d := varint.NewReader(v)
	s.from, s.to = d.Uvarint(), d.Uvarint()
	if !d.Done() {
		return fmt.Errorf("%w: vouch record of %d bytes", ErrCorrupt, len(v))
	}
	return nil
}

// Vouches reports whether the store holds every record a replay from the
// snapshot at index needs: it was synced for that snapshot (or imported
// with it) and not reset since.
func (s *Store) Vouches(index uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.from <= index && index <= s.to
}

// Sync makes every record written so far durable and vouches for the
// snapshot at index: call it once every entry up to index is applied,
// before committing that snapshot.
func (s *Store) Sync(index uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vouchLocked(s.from, max(s.to, index))
}

// vouch records, durably, the snapshots the store vouches for.
func (s *Store) vouch(from, to uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vouchLocked(from, to)
}

func (s *Store) vouchLocked(from, to uint64) error {
	v := binary.AppendUvarint(binary.AppendUvarint(nil, from), to)
	if err := s.db.Set(vouchKey, v, pebble.NoSync); err != nil {
		return fmt.Errorf("keystore: sync: %w", err)
	}
	if err := s.db.Flush(); err != nil {
		return fmt.Errorf("keystore: sync: %w", err)
	}
	s.from, s.to = from, to
	return nil
}

// Apply applies ent to e with the records the store holds of its keys,
// keeps what e spilled, and does a share of the collection CollectBelow
// asked for. An error after the engine applied (a failed write) leaves
// the store behind the engine: the node must stop, and its replay from
// its last snapshot spills again.
func (s *Store) Apply(e *engine.Engine, ent *engine.Entry) ([]engine.Result, error) {
	older, err := s.lookup(e.KeysToFetch(ent), ent.Index)
	if err != nil {
		return nil, err
	}
	results, err := e.ApplyWith(ent, older)
	if err != nil {
		return nil, err
	}
	spilled := e.TakeSpilled()
	if len(spilled) == 0 {
		return results, nil
	}
	if err := s.spill(ent.Index, e.TimeMs(), spilled); err != nil {
		return nil, err
	}
	if err := s.collectSome(2 * len(spilled)); err != nil {
		return nil, err
	}
	return results, nil
}

// lookup finds, for each key, its newest record first used before index.
// The keys are sought in order with one iterator: Pebble then reuses its
// position, and each table's filter turns away the keys it lacks.
func (s *Store) lookup(keys []string, index uint64) (map[string]engine.KeyRecord, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	slices.Sort(keys)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{recordPrefix}, UpperBound: []byte{recordPrefix + 1}})
	if err != nil {
		return nil, fmt.Errorf("keystore: lookup: %w", err)
	}
	defer it.Close()
	var found map[string]engine.KeyRecord
	var buf []byte
	for _, k := range keys {
		buf = append(append(buf[:0], recordPrefix), k...)
		if !it.SeekPrefixGE(buf) || !bytes.Equal(it.Key(), buf) {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("keystore: lookup: %w", err)
		}
		r, ok, err := newestBefore(k, v, index)
		if err != nil {
			return nil, err
		}
		if ok {
			if found == nil {
				found = make(map[string]engine.KeyRecord)
			}
			found[k] = r
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("keystore: lookup: %w", err)
	}
	return found, nil
}

// newestBefore is the newest of a key's records first used before index.
func newestBefore(scoped string, v []byte, index uint64) (engine.KeyRecord, bool, error) {
	recs, err := decodeRecords(scoped, v)
	if err != nil {
		return engine.KeyRecord{}, false, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	for _, r := range recs { // newest first
		if r.Index < index {
			return r, true, nil
		}
	}
	return engine.KeyRecord{}, false, nil
}

// spill writes the records the entry at index spilled, and what collection
// needs to find them again (their spill record, under the entry with its
// time), in one batch.
func (s *Store) spill(index uint64, timeMs int64, recs []engine.KeyRecord) error {
	b := s.db.NewBatch()
	defer b.Close()
	sp := spillRecord{timeMs: timeMs, refs: make([]recordRef, 0, len(recs))}
	var key, value []byte // the batch copies both
	for i := range recs {
		r := &recs[i]
		key = append(append(key[:0], recordPrefix), r.Key...)
		value = encodeRecords(value[:0], r)
		if err := b.Merge(key, value, nil); err != nil {
			return fmt.Errorf("keystore: spill at %d: %w", index, err)
		}
		sp.add(r)
	}
	if err := b.Set(spillKey(index, 0), sp.encode(), nil); err != nil {
		return fmt.Errorf("keystore: spill at %d: %w", index, err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("keystore: spill at %d: %w", index, err)
	}
	return nil
}

// DiskBytes is what the store takes on disk now.
func (s *Store) DiskBytes() uint64 { return s.db.Metrics().DiskSpaceUsage() }
