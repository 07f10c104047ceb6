package history

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/zkbank/zkbank/internal/varint"
)

// The index by account is written in groups, not a key per event: the
// cursors of each account's events since the last flush wait in memory
// (pending), and a flush writes one key per account,
//
//	"a" + account + 0x00 + first cursor -> uvarint n | n × (uvarint index delta, uvarint position)
//
// which costs the store a key per account and flush instead of two per
// transfer. A group holds every event of its account from its first
// cursor to the flush; a replay after a crash writes groups again that
// overlap ones already written, with the same cursors, so a reader skips
// what it has seen (cursors only go up).
type accountIndex struct {
	mu      sync.Mutex
	pending map[string][]Cursor
	count   int // cursors pending
}

// indexFlushAt is how many pending cursors make Add flush the index
// (about 20 bytes each in memory).
const indexFlushAt = 256 << 10

// add makes an entry's (account, cursor) pairs pending, under one lock.
func (x *accountIndex) add(ts []touch) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.pending == nil {
		x.pending = map[string][]Cursor{}
	}
	for _, t := range ts {
		x.pending[t.account] = append(x.pending[t.account], t.at)
	}
	x.count += len(ts)
}

// due says whether enough is pending for Add to flush.
func (x *accountIndex) due() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.count >= indexFlushAt
}

// flush writes the pending groups into db and forgets them, at once for
// readers (they see each cursor either pending or on disk).
func (x *accountIndex) flush(db *pebble.DB) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.count == 0 {
		return nil
	}
	b := db.NewBatch()
	defer b.Close()
	var key, value []byte
	for account, cs := range x.pending {
		key = appendAccountKey(key[:0], account, cs[0])
		value = appendCursors(value[:0], cs)
		if err := b.Set(key, value, nil); err != nil {
			return fmt.Errorf("history: index: %w", err)
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("history: index: %w", err)
	}
	clear(x.pending)
	x.count = 0
	return nil
}

func (x *accountIndex) reset() {
	x.mu.Lock()
	clear(x.pending)
	x.count = 0
	x.mu.Unlock()
}

// read is what a reader of account's index needs, taken at one moment:
// the pending cursors after after, and iterators that see what was
// flushed by then.
func (x *accountIndex) read(db *pebble.DB, account string, after Cursor) ([]Cursor, *pebble.Iterator, *pebble.Iterator, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var pending []Cursor
	for _, c := range x.pending[account] {
		if after.Less(c) {
			pending = append(pending, c)
		}
	}
	lo := append(append([]byte{accountPrefix}, account...), 0)
	hi := append(append([]byte{accountPrefix}, account...), 1)
	groups, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, nil, nil, err
	}
	events, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{eventPrefix}, UpperBound: []byte{eventPrefix + 1}})
	if err != nil {
		groups.Close()
		return nil, nil, nil, err
	}
	return pending, groups, events, nil
}

func appendCursors(b []byte, cs []Cursor) []byte {
	b = binary.AppendUvarint(b, uint64(len(cs)))
	prev := uint64(0)
	for _, c := range cs {
		b = binary.AppendUvarint(binary.AppendUvarint(b, c.Index-prev), uint64(c.Position))
		prev = c.Index
	}
	return b
}

func decodeCursors(b []byte) ([]Cursor, error) {
	d := varint.NewReader(b)
	n := d.Uvarint()
	if n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: an index group of %d", errCorrupt, n)
	}
	out := make([]Cursor, 0, n)
	prev := uint64(0)
	for range n {
		prev += d.Uvarint()
		out = append(out, Cursor{Index: prev, Position: uint32(d.Uvarint())})
	}
	if !d.Done() {
		return nil, fmt.Errorf("%w: an index group", errCorrupt)
	}
	return out, nil
}
