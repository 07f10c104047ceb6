// Package snapshot stores the engine's state in files a node can restart
// from, verify, and send to a peer.
//
// A snapshot is one byte stream, the same on disk and on the wire:
//
//	offset size  field (integers little-endian)
//	0      8     magic "ZKBSNAP\x00"
//	8      4     format version (1, or 2: signed)
//	12     4     header length (128)
//	16     8     index: last log entry applied
//	24     8     epoch of that entry
//	32     32    hash of that entry
//	64     32    state hash: SHA-256 of the state bytes
//	96     8     account count
//	104    8     total balance
//	112    8     creation time, Unix ms (the node's clock; informational)
//	120    8     state length n
//	128    n     state: engine.WriteState's canonical encoding
//	128+n  32    trailer: SHA-256 of bytes 0..128+n
//	(version 2 only:)
//	160+n  4     signature block length s (at most 16 KiB)
//	164+n  s     signature block: the writer's signature over the trailer
//	             (package seal defines it; this package keeps it opaque)
//
// Files are written to a temporary name, synced, renamed into place and the
// directory synced, so a crash leaves either the old set of snapshots or the
// new one. Reading verifies the trailer, the header, the state hash, and
// that the restored engine agrees with the header; anything else is
// ErrCorrupt and is never loaded. Every read streams: the state is never
// held in memory as bytes (Load, Verify, Store.Receive).
package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/zkbank/zkbank/engine"
)

const (
	magic         = "ZKBSNAP\x00"
	formatVersion = 1
	formatSigned  = 2 // a signature block follows the trailer
	headerLen     = 128
	// SignatureBytesMax bounds a signature block.
	SignatureBytesMax = 16 << 10
	trailerLen        = sha256.Size
	// StateBytesMax bounds the state a reader accepts: a peer cannot make a
	// node allocate without limit. 4 GiB is ~50 million accounts.
	StateBytesMax = 4 << 30
)

// ErrCorrupt marks a snapshot that failed verification.
var ErrCorrupt = errors.New("snapshot: corrupt")

// Meta is a snapshot's header.
type Meta struct {
	Index        uint64
	Epoch        uint64
	EntryHash    engine.Hash
	StateHash    engine.Hash
	Accounts     uint64
	TotalBalance uint64
	CreatedMs    int64
	StateLen     uint64
	// Signed says a signature block follows the trailer (format 2).
	Signed bool
	// Checksum is the trailer, and Signature the block signing it (format
	// 2); both are set by a read once they are checked and read.
	Checksum  engine.Hash
	Signature []byte
}

// Size is the length of the snapshot's encoding.
func (m *Meta) Size() int64 {
	n := headerLen + int64(m.StateLen) + trailerLen
	if m.Signed {
		n += 4 + int64(len(m.Signature))
	}
	return n
}

func (m *Meta) encode() []byte {
	h := make([]byte, headerLen)
	copy(h, magic)
	le := binary.LittleEndian
	le.PutUint32(h[8:], formatVersion)
	if m.Signed {
		le.PutUint32(h[8:], formatSigned)
	}
	le.PutUint32(h[12:], headerLen)
	le.PutUint64(h[16:], m.Index)
	le.PutUint64(h[24:], m.Epoch)
	copy(h[32:64], m.EntryHash[:])
	copy(h[64:96], m.StateHash[:])
	le.PutUint64(h[96:], m.Accounts)
	le.PutUint64(h[104:], m.TotalBalance)
	le.PutUint64(h[112:], uint64(m.CreatedMs))
	le.PutUint64(h[120:], m.StateLen)
	return h
}

func decodeMeta(h []byte) (Meta, error) {
	le := binary.LittleEndian
	if string(h[:8]) != magic {
		return Meta{}, fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	v := le.Uint32(h[8:])
	if v != formatVersion && v != formatSigned {
		return Meta{}, fmt.Errorf("%w: unknown format version %d", ErrCorrupt, v)
	}
	if n := le.Uint32(h[12:]); n != headerLen {
		return Meta{}, fmt.Errorf("%w: header length %d", ErrCorrupt, n)
	}
	m := Meta{
		Index: le.Uint64(h[16:]), Epoch: le.Uint64(h[24:]),
		Accounts: le.Uint64(h[96:]), TotalBalance: le.Uint64(h[104:]),
		CreatedMs: int64(le.Uint64(h[112:])), StateLen: le.Uint64(h[120:]), Signed: v == formatSigned,
	}
	copy(m.EntryHash[:], h[32:64])
	copy(m.StateHash[:], h[64:96])
	if m.StateLen > StateBytesMax {
		return Meta{}, fmt.Errorf("%w: state of %d bytes, limit %d", ErrCorrupt, m.StateLen, StateBytesMax)
	}
	return m, nil
}

// stream checks a snapshot as it is read part by part: openStream reads
// the header, state gives the state bytes, finish reads the trailer and
// checks both hashes. Nothing read is trusted until finish returns nil.
type stream struct {
	r      io.Reader
	sum    hash.Hash // of everything before the trailer
	hashed hash.Hash // of the state
	header []byte
	meta   Meta
}

func openStream(r io.Reader) (*stream, error) {
	c := &stream{r: r, sum: sha256.New(), hashed: sha256.New(), header: make([]byte, headerLen)}
	if _, err := io.ReadFull(io.TeeReader(r, c.sum), c.header); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrCorrupt, err)
	}
	m, err := decodeMeta(c.header)
	if err != nil {
		return nil, err
	}
	c.meta = m
	return c, nil
}

// state reads exactly the state's bytes, hashing them.
func (c *stream) state() io.Reader {
	return io.LimitReader(io.TeeReader(c.r, io.MultiWriter(c.sum, c.hashed)), int64(c.meta.StateLen))
}

// finish reads the trailer and checks the checksum and the state hash; the
// state must have been read to its end.
func (c *stream) finish() error {
	got := make([]byte, trailerLen)
	if _, err := io.ReadFull(c.r, got); err != nil {
		return fmt.Errorf("%w: trailer: %v", ErrCorrupt, err)
	}
	if !bytes.Equal(got, c.sum.Sum(nil)) {
		return fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	if !bytes.Equal(c.hashed.Sum(nil), c.meta.StateHash[:]) {
		return fmt.Errorf("%w: state hash mismatch", ErrCorrupt)
	}
	copy(c.meta.Checksum[:], got)
	if !c.meta.Signed {
		return nil
	}
	var n [4]byte
	if _, err := io.ReadFull(c.r, n[:]); err != nil {
		return fmt.Errorf("%w: signature length: %v", ErrCorrupt, err)
	}
	size := binary.LittleEndian.Uint32(n[:])
	if size == 0 || size > SignatureBytesMax {
		return fmt.Errorf("%w: a signature block of %d bytes", ErrCorrupt, size)
	}
	c.meta.Signature = make([]byte, size)
	if _, err := io.ReadFull(c.r, c.meta.Signature); err != nil {
		return fmt.Errorf("%w: signature: %v", ErrCorrupt, err)
	}
	return nil
}

// signatureBlock is the bytes after the trailer of a signed snapshot.
func signatureBlock(sig []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(len(sig))), sig...)
}

// check reports an engine that disagrees with the header it came with.
func (m *Meta) check(e *engine.Engine) error {
	tot := e.Totals()
	if e.Index() != m.Index || e.Epoch() != m.Epoch || e.LastHash() != m.EntryHash ||
		tot.Accounts != m.Accounts || tot.Balance != m.TotalBalance {
		return fmt.Errorf("%w: state disagrees with header at index %d", ErrCorrupt, m.Index)
	}
	return nil
}
