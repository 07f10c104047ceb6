package keystore

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/internal/varint"
)

// A key's value is its records, each as uvarint length | the record
// (engine.KeyRecord.MarshalValue), newest first. A spill merges a
// one-record value in (recordsMerger); the merge keeps one record per
// first-use index, so spilling an entry again (a replay) changes nothing.

// recordBytesMax bounds one encoded record: a number and a few varints.
const recordBytesMax = 256

func encodeRecords(b []byte, recs ...*engine.KeyRecord) []byte {
	for _, r := range recs {
		at := len(b)
		b = r.AppendValue(append(b, 0)) // a record is under 128 bytes: its length takes one byte
		n := len(b) - at - 1
		if n >= 0x80 {
			b = append(b[:at], binary.AppendUvarint(nil, uint64(n))...)
			b = r.AppendValue(b)
			continue
		}
		b[at] = byte(n)
	}
	return b
}

// decodeRecords reads a value, checking each record; it never panics.
func decodeRecords(scoped string, v []byte) ([]engine.KeyRecord, error) {
	var out []engine.KeyRecord
	for len(v) > 0 {
		n, k := binary.Uvarint(v)
		if k <= 0 || n > recordBytesMax || n > uint64(len(v)-k) {
			return nil, fmt.Errorf("key %q: record of %d bytes in %d", scoped, n, len(v))
		}
		r, err := engine.UnmarshalKeyRecord(scoped, v[k:k+int(n)])
		if err != nil {
			return nil, err
		}
		out = append(out, r)
		v = v[k+int(n):]
	}
	return out, nil
}

// newestFirst orders records by first use, newest first, one per index.
func newestFirst(recs []engine.KeyRecord) []engine.KeyRecord {
	slices.SortStableFunc(recs, func(a, b engine.KeyRecord) int {
		switch {
		case a.Index > b.Index:
			return -1
		case a.Index < b.Index:
			return 1
		}
		return 0
	})
	return slices.CompactFunc(recs, func(a, b engine.KeyRecord) bool { return a.Index == b.Index })
}

var recordsMerger = &pebble.Merger{
	Name: "zkbank.keystore.records.v1",
	Merge: func(key, value []byte) (pebble.ValueMerger, error) {
		return &recordsMerge{key: string(key[1:]), first: append([]byte(nil), value...)}, nil // Pebble reuses both buffers
	},
}

// recordsMerge gathers the records of every operand and writes them as
// one value. A key nearly always has one (it was spilled once), which
// passes as it is.
type recordsMerge struct {
	key   string
	first []byte
	recs  []engine.KeyRecord // once a second operand came
}

func (m *recordsMerge) add(v []byte) error {
	if m.recs == nil {
		if err := m.decode(m.first); err != nil {
			return err
		}
	}
	return m.decode(v)
}

func (m *recordsMerge) decode(v []byte) error {
	recs, err := decodeRecords(m.key, v)
	if err != nil {
		return fmt.Errorf("%w: merge: %w", ErrCorrupt, err)
	}
	m.recs = append(m.recs, recs...)
	return nil
}

func (m *recordsMerge) MergeNewer(v []byte) error { return m.add(v) }
func (m *recordsMerge) MergeOlder(v []byte) error { return m.add(v) }

func (m *recordsMerge) Finish(bool) ([]byte, io.Closer, error) {
	if m.recs == nil {
		return m.first, nil, nil
	}
	recs := newestFirst(m.recs)
	out := make([]byte, 0, 48*len(recs))
	for i := range recs {
		out = encodeRecords(out, &recs[i])
	}
	return out, nil, nil
}

// spillRecord is the value of a "g" key: what one entry spilled.
//
//	varint time_ms | varint newest_ms | uvarint count |
//	count x (uvarint index | uvarint key length | scoped key)
type spillRecord struct {
	timeMs   int64 // the spilling entry's effective time, or a time before it
	newestMs int64 // the newest first-use time among the records
	refs     []recordRef
}

type recordRef struct {
	key   string
	index uint64
}

func (sp *spillRecord) add(r *engine.KeyRecord) {
	sp.newestMs = max(sp.newestMs, r.TimeMs)
	sp.refs = append(sp.refs, recordRef{key: r.Key, index: r.Index})
}

func (sp *spillRecord) encode() []byte {
	b := make([]byte, 0, 24+40*len(sp.refs))
	b = binary.AppendVarint(b, sp.timeMs)
	b = binary.AppendVarint(b, sp.newestMs)
	b = binary.AppendUvarint(b, uint64(len(sp.refs)))
	for _, r := range sp.refs {
		b = binary.AppendUvarint(b, r.index)
		b = binary.AppendUvarint(b, uint64(len(r.key)))
		b = append(b, r.key...)
	}
	return b
}

// decodeSpill reads a "g" value; it never panics.
func decodeSpill(v []byte) (spillRecord, error) {
	var sp spillRecord
	d := varint.NewReader(v)
	sp.timeMs, sp.newestMs = d.Varint(), d.Varint()
	n := d.Uvarint()
	if n > uint64(len(v)) {
		return sp, fmt.Errorf("%w: spill record of %d refs in %d bytes", ErrCorrupt, n, len(v))
	}
	sp.refs = make([]recordRef, 0, n)
	for i := uint64(0); i < n && d.OK(); i++ {
		index := d.Uvarint()
		sp.refs = append(sp.refs, recordRef{index: index, key: string(d.Bytes(d.Uvarint()))})
	}
	if !d.Done() {
		return sp, fmt.Errorf("%w: spill record of %d bytes", ErrCorrupt, len(v))
	}
	return sp, nil
}
