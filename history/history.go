// Package history keeps, beside a node's journal, every command the node
// applied with its outcome and the accounts after it (an Event), and an
// index of them by account: the statements (Store.Statement) and the
// change feed (Store.Events) are read from it, a page at the cost of a
// seek and a page's reads however long the log. Replayed retries are not
// events: they changed nothing.
//
// Keys, in Pebble:
//
//	"e" + uint64 index + uint32 position -> the event
//	"a" + account + 0x00 + first cursor  -> a group of the account's cursors (index.go)
//	"m"                                  -> uvarint from | uvarint through
//
// The store holds the events of the entries from..through, without a gap.
// Every apply adds its entry (Add), in the same Pebble batch as "m",
// without a WAL: a node flushes the store before it commits a snapshot
// (Sync), and a replay from that snapshot adds its entries again, the
// same ones. A store
// that cannot continue where an apply starts (it was lost, or the node
// installed a peer's snapshot past it) starts again, empty, from there
// (Begin): a node says where its history starts.
package history

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/internal/pebblelog"
	"github.com/zkbank/zkbank/internal/varint"
)

const (
	eventPrefix   = 'e'
	accountPrefix = 'a'
)

var metaKey = []byte("m")

func eventKey(c Cursor) []byte { return appendEventKey(make([]byte, 0, 13), c) }

func appendEventKey(k []byte, c Cursor) []byte {
	k = binary.BigEndian.AppendUint64(append(k, eventPrefix), c.Index)
	return binary.BigEndian.AppendUint32(k, c.Position)
}

func cursorOf(b []byte) Cursor {
	return Cursor{Index: binary.BigEndian.Uint64(b), Position: binary.BigEndian.Uint32(b[8:])}
}

// accountKey is the index key of account's event at c; account numbers
// hold no 0x00, which ends them.
func accountKey(account string, c Cursor) []byte {
	return appendAccountKey(make([]byte, 0, 2+len(account)+12), account, c)
}

func appendAccountKey(k []byte, account string, c Cursor) []byte {
	k = append(append(append(k, accountPrefix), account...), 0)
	k = binary.BigEndian.AppendUint64(k, c.Index)
	return binary.BigEndian.AppendUint32(k, c.Position)
}

// next is the first key past every key of c: where a read "after c"
// seeks.
func next(c Cursor) Cursor {
	if c.Position == lastPosition {
		return Cursor{Index: c.Index + 1}
	}
	return Cursor{Index: c.Index, Position: c.Position + 1}
}

// Options configure Open.
type Options struct {
	FS vfs.FS // nil: the real one
}

// Store is a node's history. Begin, Add and Sync are for one goroutine
// (the one that applies); the reads may run beside it.
type Store struct {
	db      *pebble.DB
	from    atomic.Uint64 // first index held
	through atomic.Uint64 // last index held
	adding  adding        // Add's state and buffers
	key     []byte
	value   []byte
	touched []touch // the entry's (account, cursor) pairs, for the index
	index   accountIndex
}

type touch struct {
	account string
	at      Cursor
}

// memtableBytes: a large memtable flushes (and compacts) less often; the
// store has no WAL, so it is also what a crash may lose, and a replay from
// the last snapshot writes again.
const memtableBytes = 32 << 20

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	po := &pebble.Options{FS: opts.FS, Logger: pebblelog.Quiet{}, DisableWAL: true, MemTableSize: memtableBytes}
	if po.FS == nil {
		po.FS = vfs.Default
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("history: open %s: %w", dir, err)
	}
	s := &Store{db: db, adding: adding{names: map[string]string{}}}
	if err := s.loadMeta(); err != nil {
		db.Close()
		return nil, fmt.Errorf("history: open %s: %w", dir, err)
	}
	return s, nil
}

// OpenMem opens a store held in memory, for tests and audits.
func OpenMem() *Store {
	s, err := Open("", Options{FS: vfs.NewMem()})
	if err != nil {
		panic(err) // an in-memory Pebble does not fail to open
	}
	return s
}

func (s *Store) loadMeta() error {
	v, closer, err := s.db.Get(metaKey)
	if errors.Is(err, pebble.ErrNotFound) {
		s.from.Store(1) // a new store: it holds the (no) events up to index 0
		return nil
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	d := varint.NewReader(v)
	from, through := d.Uvarint(), d.Uvarint()
	if !d.Done() || from == 0 || from > through+1 {
		return fmt.Errorf("%w: meta", errCorrupt)
	}
	s.from.Store(from)
	s.through.Store(through)
	return nil
}

func appendMeta(b []byte, from, through uint64) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(b, from), through)
}

// Close writes what is in memory to disk, so that a restart replays
// nothing into it twice, and closes the store.
func (s *Store) Close() error {
	if err := errors.Join(s.index.flush(s.db), s.db.Flush(), s.db.Close()); err != nil {
		return fmt.Errorf("history: close: %w", err)
	}
	return nil
}

// From is the index of the first entry whose events the store holds;
// Through the last. From is Through+1 when it holds none.
func (s *Store) From() uint64    { return s.from.Load() }
func (s *Store) Through() uint64 { return s.through.Load() }

// DiskBytes is what the store takes on disk.
func (s *Store) DiskBytes() uint64 { return s.db.Metrics().DiskSpaceUsage() }

// Begin readies the store for applies that start after index (the
// engine's, before a replay or the replica loop's first apply): it keeps
// what it holds when those applies continue it, and otherwise starts
// again, empty, from index+1.
func (s *Store) Begin(index uint64) error {
	if s.from.Load() <= index+1 && index <= s.through.Load() {
		return nil
	}
	return s.Reset(index)
}

// Reset forgets every event and starts again after index (a journal that
// forked: what the store holds past index is of the fork).
func (s *Store) Reset(index uint64) error {
	s.index.reset()
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange([]byte{0}, []byte{0xff}, nil); err != nil {
		return fmt.Errorf("history: reset: %w", err)
	}
	if err := b.Set(metaKey, appendMeta(nil, index+1, index), nil); err != nil {
		return fmt.Errorf("history: reset: %w", err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("history: reset: %w", err)
	}
	if err := s.db.Flush(); err != nil { // a reset that a crash undid would bring back what it forgot
		return fmt.Errorf("history: reset: %w", err)
	}
	s.from.Store(index + 1)
	s.through.Store(index)
	return nil
}

// TrimBelow forgets the events of the entries below index, keeping
// index..Through; statements and feeds then start at index. The index by
// account keeps its groups (a key per account and flush), whose cursors
// below index readers pass over.
func (s *Store) TrimBelow(index uint64) error {
	from := s.from.Load()
	if index <= from {
		return nil
	}
	index = min(index, s.through.Load()+1)
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(eventKey(Cursor{Index: from}), eventKey(Cursor{Index: index}), nil); err != nil {
		return fmt.Errorf("history: trim: %w", err)
	}
	if err := b.Set(metaKey, appendMeta(nil, index, s.through.Load()), nil); err != nil {
		return fmt.Errorf("history: trim: %w", err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("history: trim: %w", err)
	}
	s.from.Store(index)
	return nil
}

// Apply applies ent to e with apply (a key store's) and adds its events.
func (s *Store) Apply(apply func(*engine.Engine, *engine.Entry) ([]engine.Result, error), e *engine.Engine, ent *engine.Entry) ([]engine.Result, error) {
	s.adding.accounts = Before(e, ent, s.adding.accounts)
	results, err := apply(e, ent)
	if err != nil {
		return nil, err
	}
	if err := s.Add(ent, results, e, s.adding.accounts); err != nil {
		return nil, err
	}
	return results, nil
}

// Add records the events of ent, applied by e with results, from the
// accounts as they were before it (Before; Add updates them). The entry
// must continue the store (Begin) or be one it holds already (a replay),
// whose events are the same again. The store has no WAL: a crash loses
// what Sync did not cover, with the "m" that said it was there, and a
// replay from the snapshot it covered writes it again.
func (s *Store) Add(ent *engine.Entry, results []engine.Result, e *engine.Engine, accounts map[string]AccountAfter) error {
	from, through := s.from.Load(), s.through.Load()
	if ent.Index < from || ent.Index > through+1 {
		return fmt.Errorf("history: add %d: the store holds %d to %d (Begin first)", ent.Index, from, through)
	}
	b := s.db.NewBatch()
	defer b.Close()
	s.adding.accounts, s.touched = accounts, s.touched[:0]
	clear(s.adding.names)
	for i := range ent.Commands {
		res := &results[i]
		if res.Replayed {
			continue
		}
		ev := eventOf(ent, i, res, e, &s.adding)
		for _, a := range s.adding.touched {
			s.touched = append(s.touched, touch{a, ev.Cursor})
		}
		s.value = appendEvent(s.value[:0], &ev)
		s.key = appendEventKey(s.key[:0], ev.Cursor)
		if err := b.Set(s.key, s.value, nil); err != nil {
			return fmt.Errorf("history: add %d: %w", ent.Index, err)
		}
	}
	through = max(through, ent.Index)
	if err := b.Set(metaKey, appendMeta(nil, from, through), nil); err != nil {
		return fmt.Errorf("history: add %d: %w", ent.Index, err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("history: add %d: %w", ent.Index, err)
	}
	// The index after the events: a reader finds each cursor's event.
	s.index.add(s.touched)
	s.through.Store(through)
	if s.index.due() {
		return s.index.flush(s.db)
	}
	return nil
}

// Sync makes what Add wrote durable (a flush: the store has no WAL); a
// node calls it before it commits a snapshot, so that a replay from that
// snapshot finds the store whole below it.
func (s *Store) Sync() error {
	if err := errors.Join(s.index.flush(s.db), s.db.Flush()); err != nil {
		return fmt.Errorf("history: sync: %w", err)
	}
	return nil
}

// ErrGone: the events asked for are older than the store's first.
var ErrGone = errors.New("history: older than what this node holds")

// check refuses a read after c that the store cannot answer whole.
func (s *Store) check(after Cursor) error {
	if from := s.from.Load(); from > 1 && next(after).Index < from {
		return fmt.Errorf("%w: it holds from index %d, asked after %s", ErrGone, from, after)
	}
	return nil
}

// Statement calls fn with account's events after the cursor, in log
// order, until fn returns false or there are no more.
func (s *Store) Statement(account string, after Cursor, fn func(Event) bool) error {
	if err := s.check(after); err != nil {
		return err
	}
	pending, groups, evs, err := s.index.read(s.db, account, after)
	if err != nil {
		return fmt.Errorf("history: statement: %w", err)
	}
	defer groups.Close()
	defer evs.Close()
	seen := after // the last cursor passed on (or skipped)
	each := func(c Cursor) (bool, error) {
		if !seen.Less(c) {
			return true, nil
		}
		seen = c
		if !evs.SeekGE(eventKey(c)) || !bytes.Equal(evs.Key(), eventKey(c)) {
			return false, fmt.Errorf("%w: account %q's event %s is missing", errCorrupt, account, c)
		}
		ev, err := decodeEvent(c, evs.Value())
		if err != nil {
			return false, err
		}
		return fn(ev), nil
	}
	// The group that holds the cursor's successor starts at or before it.
	ok := groups.SeekLT(accountKey(account, next(after)))
	if !ok {
		ok = groups.First()
	}
	for ; ok; ok = groups.Next() {
		cs, err := decodeCursors(groups.Value())
		if err != nil {
			return err
		}
		for _, c := range cs {
			if more, err := each(c); err != nil || !more {
				return err
			}
		}
	}
	if err := groups.Error(); err != nil {
		return fmt.Errorf("history: statement: %w", err)
	}
	for _, c := range pending {
		if more, err := each(c); err != nil || !more {
			return err
		}
	}
	return nil
}

// Events calls fn with every event after the cursor, in log order, until
// fn returns false or there are no more.
func (s *Store) Events(after Cursor, fn func(Event) bool) error {
	if err := s.check(after); err != nil {
		return err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: eventKey(next(after)), UpperBound: []byte{eventPrefix + 1}})
	if err != nil {
		return fmt.Errorf("history: events: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		ev, err := decodeEvent(cursorOf(it.Key()[1:]), it.Value())
		if err != nil {
			return err
		}
		if !fn(ev) {
			return nil
		}
	}
	return it.Error()
}
