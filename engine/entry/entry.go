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
	"encoding/binary"
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
	// BodySealed is the first body version written in layout 3: the body
	// encrypted, the envelope signed (package seal).
	BodySealed = 3
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
	Body        []byte // msgpack bytes of the body, of BodyVersion; sealed (encrypted) in layout 3

	// Layout 3 (BodySealed and later) only. KeyID names the data key the
	// body is sealed with; Sig signs SigningHash. A term entry, the first
	// of its epoch, also carries the signer's node certificate (DER) and
	// the cluster's id; the entries after it in the epoch carry neither.
	KeyID   uint32
	Cert    []byte
	Cluster []byte
	Sig     []byte

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
	if err := e.checkSeal(); err != nil {
		return nil, fmt.Errorf("entry: encode %d: %w", e.Index, err)
	}
	w := pack.NewWriter(96 + len(e.Body) + len(e.Cert) + len(e.Sig))
	w.MapLen(fieldCount(e))
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
	if e.BodyVersion >= BodySealed {
		w.Str("kid")
		w.Uint(uint64(e.KeyID))
		if len(e.Cert) > 0 {
			w.Str("cert")
			w.Bin(e.Cert)
			w.Str("cluster")
			w.Bin(e.Cluster)
		}
		w.Str("sig")
		w.Bin(e.Sig)
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
	switch {
	case bodyVersion == BodyV1:
		return 1
	case bodyVersion < BodySealed:
		return 2
	}
	return 3
}

// fieldCount is how many fields e's layout writes.
func fieldCount(e *Envelope) int {
	switch layout(e.BodyVersion) {
	case 1:
		return 6
	case 2:
		return 7
	}
	if len(e.Cert) > 0 {
		return 11
	}
	return 9
}

// Limits of layout 3's fields.
const (
	CertBytesMax    = 8 << 10
	ClusterBytesMax = 64
	SigBytesMax     = 160
)

// checkSeal: layout 3 needs a signature, and a certificate comes with a
// cluster id; layouts 1 and 2 carry none of those fields.
func (e *Envelope) checkSeal() error {
	sealed := e.BodyVersion >= BodySealed
	switch {
	case !sealed && (e.KeyID != 0 || e.Cert != nil || e.Cluster != nil || e.Sig != nil):
		return fmt.Errorf("body version %d carries no key id, certificate, cluster or signature", e.BodyVersion)
	case !sealed:
		return nil
	case len(e.Sig) == 0 || len(e.Sig) > SigBytesMax:
		return fmt.Errorf("signature of %d bytes (1 to %d)", len(e.Sig), SigBytesMax)
	case (len(e.Cert) == 0) != (len(e.Cluster) == 0):
		return errors.New("a term entry carries both a certificate and a cluster id, any other neither")
	case len(e.Cert) > CertBytesMax || len(e.Cluster) > ClusterBytesMax:
		return fmt.Errorf("certificate of %d bytes (at most %d) or cluster id of %d (at most %d)", len(e.Cert), CertBytesMax, len(e.Cluster), ClusterBytesMax)
	}
	return nil
}

// SigningHash is what the signature of a layout 3 envelope signs: the
// SHA-256 of a domain tag, the cluster's id, and every field of the
// envelope but the signature, each of a fixed width or length-prefixed
// (docs/format.md). Nothing in it depends on a clock or on msgpack.
func (e *Envelope) SigningHash(cluster []byte) Hash {
	h := sha256.New()
	var b [8]byte
	num := func(v uint64) {
		binary.BigEndian.PutUint64(b[:], v)
		h.Write(b[:])
	}
	bytes := func(p []byte) {
		num(uint64(len(p)))
		h.Write(p)
	}
	h.Write([]byte(signingTag))
	bytes(cluster)
	num(e.Index)
	num(e.Epoch)
	h.Write(e.PrevHash[:])
	num(uint64(e.TimeMs))
	num(uint64(e.BodyVersion))
	num(uint64(e.KeyID))
	bytes(e.Cert)
	bytes(e.Cluster)
	bytes(e.Body)
	var out Hash
	h.Sum(out[:0])
	return out
}

// signingTag starts every SigningHash, so that no other signature by a
// node key (a TLS handshake's, a snapshot's) is ever an entry's.
const signingTag = "zkbank entry signature v1\x00"

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
