// Package entry is the envelope of one entry of the operations log: where
// it sits in the chain (index, epoch, the hash of the entry before), the
// leader's clock, and a body of a stated version that this package carries
// without reading. Coordination (zkcoord) needs nothing more to append,
// tail and check the log; the engine decodes the body.
//
// Two layouts, told apart by "v" (docs/format.md):
//
//	v 1: {"v":1, "index", "epoch", "prev_hash", "time_ms", "commands": body}
//	     the body (version 1) inline: today's entries, byte for byte; as
//	     the last field it runs to the end of the bytes, and only the body
//	     decoder says whether it is one well-formed body
//	v 2: {"v":2, "index", "epoch", "prev_hash", "time_ms", "bv": N, "body": bin}
//	     any later body version, as opaque bytes
//
// The hash of an entry is the SHA-256 of its encoding; prev_hash chains
// each entry to the one before, so any reader detects a gap, a fork or
// tampering.
package entry

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/zkbank/zkbank/engine/internal/pack"
)

// Hash is a SHA-256 digest: of an encoded entry, or of a canonical state.
type Hash [sha256.Size]byte

// String renders the hash in hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash reads a hash rendered by String.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("entry: bad hash %q", s)
	}
	copy(h[:], b)
	return h, nil
}

// Sum is the hash of an encoded entry.
func Sum(raw []byte) Hash { return sha256.Sum256(raw) }

// BytesMax is the hard cap on one encoded entry; ZooKeeper refuses
// requests near 1 MB (jute.maxbuffer).
const BytesMax = 900 << 10

// Body versions. BodyV1 is the only one carried inline (layout v 1).
const (
	BodyV1 = 1
	// BodyVersionMax bounds the versions an envelope may name.
	BodyVersionMax = 1 << 16
)

// ErrMalformed marks bytes that are not a well-formed envelope. A replica
// that reads one must not apply it.
var ErrMalformed = errors.New("entry: malformed envelope")

// Envelope is one entry of the log without its body decoded. Index is the
// cluster's own contiguous 1-based log position; PrevHash the Hash of the
// entry at Index-1 (zero for index 1); TimeMs the leader's clock when it
// made the entry.
type Envelope struct {
	Index       uint64
	Epoch       uint64
	PrevHash    Hash
	TimeMs      int64
	BodyVersion uint32
	Body        []byte // msgpack bytes of the body, of BodyVersion

	raw  []byte // the bytes this envelope was decoded from or encoded to
	hash Hash   // SHA-256 of raw
}

// Hash returns the SHA-256 of the entry's encoding, set by Encode and
// Decode.
func (e *Envelope) Hash() Hash { return e.hash }

// Raw returns the encoding, as it is in the log. Callers must not modify
// it.
func (e *Envelope) Raw() []byte { return e.raw }

// Encode encodes e and records the bytes and their hash in it. The
// encoding of an envelope is always the same bytes.
func Encode(e *Envelope) ([]byte, error) {
	if e.BodyVersion < BodyV1 || e.BodyVersion >= BodyVersionMax {
		return nil, fmt.Errorf("entry: encode %d: body version %d", e.Index, e.BodyVersion)
	}
	w := pack.NewWriter(96 + len(e.Body))
	w.MapLen(6 + min(int(e.BodyVersion)-1, 1))
	w.Str("v")
	w.Uint(layout(e.BodyVersion))
	w.Str("index")
	w.Uint(e.Index)
	w.Str("epoch")
	w.Uint(e.Epoch)
	w.Str("prev_hash")
	w.Bin(e.PrevHash[:])
	w.Str("time_ms")
	w.Int(e.TimeMs)
	if e.BodyVersion == BodyV1 {
		if n, ok := pack.Span(e.Body); !ok || n != len(e.Body) {
			return nil, fmt.Errorf("entry: encode %d: a version 1 body must be one msgpack value", e.Index)
		}
		w.Str("commands")
		w.Raw(e.Body)
	} else {
		w.Str("bv")
		w.Uint(uint64(e.BodyVersion))
		w.Str("body")
		w.Bin(e.Body)
	}
	if w.Err != nil {
		return nil, fmt.Errorf("entry: encode %d: %w", e.Index, w.Err)
	}
	if w.Buf.Len() > BytesMax {
		return nil, fmt.Errorf("entry: encode %d: %d bytes, limit %d", e.Index, w.Buf.Len(), BytesMax)
	}
	e.raw = w.Buf.Bytes()
	e.hash = Sum(e.raw)
	return e.raw, nil
}

// layout is the envelope layout a body version is written in.
func layout(bodyVersion uint32) uint64 {
	if bodyVersion == BodyV1 {
		return 1
	}
	return 2
}

// Decode decodes an envelope and keeps raw and its hash in it (raw must
// not be modified afterwards; Body is a slice of it). Anything but a
// well-formed envelope within the size limit is an error wrapping
// ErrMalformed; it never panics. The body is not read: a body version
// this binary does not know still decodes here.
func Decode(raw []byte) (*Envelope, error) {
	if len(raw) > BytesMax {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(raw), BytesMax)
	}
	e, ok := scan(raw)
	if !ok {
		var err error
		if e, err = read(raw); err != nil {
			return nil, err
		}
	}
	e.raw = raw
	e.hash = Sum(raw)
	return e, nil
}
