// Package varint reads what encoding/binary's Append(U)varint wrote, with
// one check at the end instead of one per field: the key store's and the
// history's records.
package varint

import "encoding/binary"

// Reader takes fields off the front of b. Once a read fails (b too
// short, a varint that does not end) every later read returns zero and
// OK says false.
type Reader struct {
	b      []byte
	failed bool
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// OK says whether every read so far succeeded.
func (r *Reader) OK() bool { return !r.failed }

// Done says whether every read succeeded and nothing is left.
func (r *Reader) Done() bool { return !r.failed && len(r.b) == 0 }

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	v, k := binary.Uvarint(r.b)
	if r.failed || k <= 0 {
		r.failed = true
		return 0
	}
	r.b = r.b[k:]
	return v
}

// Varint reads a signed varint.
func (r *Reader) Varint() int64 {
	v, k := binary.Varint(r.b)
	if r.failed || k <= 0 {
		r.failed = true
		return 0
	}
	r.b = r.b[k:]
	return v
}

// Bytes reads the next n bytes (b's own, not a copy).
func (r *Reader) Bytes(n uint64) []byte {
	if r.failed || n > uint64(len(r.b)) {
		r.failed = true
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

// String reads a uvarint length and that many bytes.
func (r *Reader) String() string { return string(r.Bytes(r.Uvarint())) }
