package pack

import (
	"bytes"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Reader decodes with the msgpack Decoder's low-level API: no reflection,
// no allocation for map keys, explicit limits. It is the reference for
// what the formats are.
type Reader struct {
	dec     *msgpack.Decoder
	rd      *bytes.Reader
	b       []byte
	keyBuf  [16]byte
	scratch []byte
}

// NewReader reads b.
func NewReader(b []byte) *Reader {
	rd := bytes.NewReader(b)
	return &Reader{dec: msgpack.NewDecoder(rd), rd: rd, b: b}
}

// Left is how many bytes are not read yet.
func (r *Reader) Left() int { return r.rd.Len() }

// MapLen reads a map header.
func (r *Reader) MapLen() (int, error) { return r.dec.DecodeMapLen() }

// ArrayLen reads an array header.
func (r *Reader) ArrayLen() (int, error) { return r.dec.DecodeArrayLen() }

// Uint reads an unsigned integer.
func (r *Reader) Uint() (uint64, error) { return r.dec.DecodeUint64() }

// Int reads a signed integer.
func (r *Reader) Int() (int64, error) { return r.dec.DecodeInt64() }

// Key reads a map key of at most 16 bytes.
func (r *Reader) Key() (string, error) {
	n, err := r.dec.DecodeBytesLen()
	if err != nil {
		return "", err
	}
	if n < 0 || n > len(r.keyBuf) {
		return "", fmt.Errorf("bad key length %d", n)
	}
	if err := r.dec.ReadFull(r.keyBuf[:n]); err != nil {
		return "", err
	}
	return string(r.keyBuf[:n]), nil
}

// Fixed reads a str or bin of exactly len(b) bytes into b.
func (r *Reader) Fixed(b []byte) error {
	n, err := r.dec.DecodeBytesLen()
	if err != nil {
		return err
	}
	if n != len(b) {
		return fmt.Errorf("%d bytes, want %d", n, len(b))
	}
	return r.dec.ReadFull(b)
}

// Str reads a str or bin of at most limit bytes. The length is checked
// before anything is allocated.
func (r *Reader) Str(limit int) (string, error) {
	b, err := r.bytes(limit)
	return string(b), err
}

// Bytes reads a str or bin of at most limit bytes, as a slice of the
// input (not a copy).
func (r *Reader) Bytes(limit int) ([]byte, error) {
	n, err := r.dec.DecodeBytesLen()
	if err != nil {
		return nil, err
	}
	if n < 0 || n > limit || n > r.rd.Len() {
		return nil, fmt.Errorf("%d bytes, limit %d", n, min(limit, r.rd.Len()))
	}
	off := len(r.b) - r.rd.Len()
	if _, err := r.rd.Seek(int64(n), 1); err != nil {
		return nil, err
	}
	return r.b[off : off+n], nil
}

// bytes reads into a reused buffer; the caller copies.
func (r *Reader) bytes(limit int) ([]byte, error) {
	n, err := r.dec.DecodeBytesLen()
	if err != nil {
		return nil, err
	}
	if n < 0 || n > limit {
		return nil, fmt.Errorf("string of %d bytes, limit %d", n, limit)
	}
	if cap(r.scratch) < n {
		r.scratch = make([]byte, n, max(n, 1024))
	}
	b := r.scratch[:n]
	return b, r.dec.ReadFull(b)
}

// Rest reads every byte left, as a slice of the input.
func (r *Reader) Rest() []byte {
	off := len(r.b) - r.rd.Len()
	r.rd.Seek(0, 2)
	return r.b[off:]
}

// Value reads one value of any form and returns its bytes, as a slice of
// the input (see Span).
func (r *Reader) Value() ([]byte, error) {
	off := len(r.b) - r.rd.Len()
	n, ok := Span(r.b[off:])
	if !ok {
		return nil, fmt.Errorf("not a whole msgpack value at byte %d", off)
	}
	if _, err := r.rd.Seek(int64(n), 1); err != nil {
		return nil, err
	}
	return r.b[off : off+n], nil
}
