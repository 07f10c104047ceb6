package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// EntryVersion is the envelope version this package writes and reads.
const EntryVersion = 1

// Hash is a SHA-256 digest: of an encoded entry, or of a canonical state.
type Hash [sha256.Size]byte

// String renders the hash in hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash reads a hash rendered by String.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("engine: bad hash %q", s)
	}
	copy(h[:], b)
	return h, nil
}

// ErrMalformedEntry marks bytes that are not a valid entry of a known
// version. A replica that reads one must stop: it cannot apply what it
// cannot understand.
var ErrMalformedEntry = errors.New("engine: malformed entry")

// Entry is one batch in the operations log: the unit the leader appends and
// every node applies. Index is the cluster's own contiguous 1-based log
// position; PrevHash is the Hash of the entry at Index-1 (zero for index 1),
// so that any reader detects a gap, a fork or tampering. TimeMs is the
// leader's clock when it built the entry; the engine only records it.
type Entry struct {
	Index    uint64
	Epoch    uint64
	PrevHash Hash
	TimeMs   int64
	Commands []Command

	raw  []byte // the bytes this entry was decoded from or encoded to
	hash Hash   // SHA-256 of raw
}

// Hash returns the SHA-256 of the entry's encoding. It is set by
// EncodeEntry and DecodeEntry.
func (e *Entry) Hash() Hash { return e.hash }

// Raw returns the encoding the entry was decoded from or encoded to, as it
// is in the log. Callers must not modify it.
func (e *Entry) Raw() []byte { return e.raw }

// HashBytes returns the hash of an encoded entry.
func HashBytes(raw []byte) Hash { return sha256.Sum256(raw) }

// EncodeEntry encodes e as a msgpack map and records its hash in e. The
// encoding of a given Entry is always the same bytes.
func EncodeEntry(e *Entry) ([]byte, error) {
	if len(e.Commands) > EntryCommandsMax {
		return nil, fmt.Errorf("engine: encode entry %d: %d commands, limit %d", e.Index, len(e.Commands), EntryCommandsMax)
	}
	var buf bytes.Buffer
	buf.Grow(64 + 48*len(e.Commands))
	enc := msgpack.NewEncoder(&buf)
	if err := encodeEnvelope(enc, e); err != nil {
		return nil, fmt.Errorf("engine: encode entry %d: %w", e.Index, err)
	}
	if buf.Len() > EntryBytesMax {
		return nil, fmt.Errorf("engine: encode entry %d: %d bytes, limit %d", e.Index, buf.Len(), EntryBytesMax)
	}
	e.raw = buf.Bytes()
	e.hash = HashBytes(e.raw)
	return e.raw, nil
}

func encodeEnvelope(enc *msgpack.Encoder, e *Entry) error {
	w := fieldWriter{enc: enc}
	w.mapLen(6)
	w.str("v")
	w.uint(EntryVersion)
	w.str("index")
	w.uint(e.Index)
	w.str("epoch")
	w.uint(e.Epoch)
	w.str("prev_hash")
	w.bytes(e.PrevHash[:])
	w.str("time_ms")
	w.int(e.TimeMs)
	w.str("commands")
	w.arrayLen(len(e.Commands))
	for i := range e.Commands {
		encodeCommand(&w, &e.Commands[i])
	}
	return w.err
}

// encodeCommand writes a command as a map holding only the fields that are
// set, so that the encoding is canonical and compact.
func encodeCommand(w *fieldWriter, c *Command) {
	n := 2
	for _, set := range []bool{c.Account != "", c.To != "", c.Name != "", c.Amount != 0} {
		if set {
			n++
		}
	}
	w.mapLen(n)
	w.str("op")
	w.uint(uint64(c.Op))
	w.str("key")
	w.str(c.Key)
	w.optStr("account", c.Account)
	w.optStr("to", c.To)
	w.optStr("name", c.Name)
	if c.Amount != 0 {
		w.str("amount")
		w.uint(c.Amount)
	}
}

// fieldWriter keeps the first encoding error so that the encoders read as a
// plain list of fields.
type fieldWriter struct {
	enc *msgpack.Encoder
	err error
}

func (w *fieldWriter) do(err error) {
	if w.err == nil {
		w.err = err
	}
}

func (w *fieldWriter) mapLen(n int)   { w.do(w.enc.EncodeMapLen(n)) }
func (w *fieldWriter) arrayLen(n int) { w.do(w.enc.EncodeArrayLen(n)) }
func (w *fieldWriter) str(s string)   { w.do(w.enc.EncodeString(s)) }
func (w *fieldWriter) uint(v uint64)  { w.do(w.enc.EncodeUint(v)) }
func (w *fieldWriter) int(v int64)    { w.do(w.enc.EncodeInt(v)) }
func (w *fieldWriter) bytes(b []byte) { w.do(w.enc.EncodeBytes(b)) }
func (w *fieldWriter) optStr(k, v string) {
	if v != "" {
		w.str(k)
		w.str(v)
	}
}

// DecodeEntry decodes an entry and keeps raw and its hash in it (raw must
// not be modified afterwards). Anything
// but a well-formed entry of a known version, within the size limits, is an
// error wrapping ErrMalformedEntry; it never panics.
func DecodeEntry(raw []byte) (*Entry, error) {
	if len(raw) > EntryBytesMax {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformedEntry, len(raw), EntryBytesMax)
	}
	e, ok := scanEntry(raw)
	if !ok {
		var err error
		if e, err = readEntry(raw); err != nil {
			return nil, err
		}
	}
	e.raw = raw
	e.hash = HashBytes(raw)
	return e, nil
}

// readEntry decodes raw with the msgpack Decoder: the reference for what
// is an entry, and the judge of whatever scanEntry does not take.
func readEntry(raw []byte) (*Entry, error) {
	rd := bytes.NewReader(raw)
	r := fieldReader{dec: msgpack.NewDecoder(rd)}
	e := &Entry{}
	if err := r.envelope(e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedEntry, err)
	}
	if rd.Len() != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformedEntry, rd.Len())
	}
	return e, nil
}

// fieldReader decodes the envelope with the low-level msgpack API: no
// reflection, no allocation for map keys, explicit limits.
type fieldReader struct {
	dec     *msgpack.Decoder
	keyBuf  [16]byte
	scratch []byte
}

func (r *fieldReader) envelope(e *Entry) error {
	n, err := r.dec.DecodeMapLen()
	if err != nil {
		return err
	}
	var seen uint8
	for i := 0; i < n; i++ {
		k, err := r.key()
		if err != nil {
			return err
		}
		bit, err := r.envelopeField(k, e)
		if err != nil {
			return fmt.Errorf("field %q: %w", k, err)
		}
		if seen&bit != 0 {
			return fmt.Errorf("field %q repeated", k)
		}
		seen |= bit
	}
	if seen != 0x3f {
		return fmt.Errorf("missing fields (have %06b)", seen)
	}
	return nil
}

func (r *fieldReader) envelopeField(k string, e *Entry) (uint8, error) {
	switch k {
	case "v":
		v, err := r.dec.DecodeUint64()
		if err == nil && v != EntryVersion {
			err = fmt.Errorf("unknown version %d", v)
		}
		return 1, err
	case "index":
		v, err := r.dec.DecodeUint64()
		e.Index = v
		return 2, err
	case "epoch":
		v, err := r.dec.DecodeUint64()
		e.Epoch = v
		return 4, err
	case "prev_hash":
		return 8, r.hash(&e.PrevHash)
	case "time_ms":
		v, err := r.dec.DecodeInt64()
		e.TimeMs = v
		return 16, err
	case "commands":
		cmds, err := r.commands()
		e.Commands = cmds
		return 32, err
	}
	return 0, errors.New("unknown field")
}

// key reads a map key of at most 16 bytes.
func (r *fieldReader) key() (string, error) {
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

func (r *fieldReader) hash(h *Hash) error {
	n, err := r.dec.DecodeBytesLen()
	if err != nil {
		return err
	}
	if n != len(h) {
		return fmt.Errorf("hash of %d bytes", n)
	}
	return r.dec.ReadFull(h[:])
}

func (r *fieldReader) commands() ([]Command, error) {
	n, err := r.dec.DecodeArrayLen()
	if err != nil {
		return nil, err
	}
	if n < 0 || n > EntryCommandsMax {
		return nil, fmt.Errorf("%d commands, limit %d", n, EntryCommandsMax)
	}
	cmds := make([]Command, n)
	for i := range cmds {
		if err := r.command(&cmds[i]); err != nil {
			return nil, fmt.Errorf("command %d: %w", i, err)
		}
	}
	return cmds, nil
}

func (r *fieldReader) command(c *Command) error {
	n, err := r.dec.DecodeMapLen()
	if err != nil {
		return err
	}
	var seen uint8
	for i := 0; i < n; i++ {
		k, err := r.key()
		if err != nil {
			return err
		}
		bit, err := r.commandField(k, c)
		if err != nil {
			return fmt.Errorf("field %q: %w", k, err)
		}
		if seen&bit != 0 {
			return fmt.Errorf("field %q repeated", k)
		}
		seen |= bit
	}
	if seen&3 != 3 {
		return errors.New("op and key are required")
	}
	return nil
}

func (r *fieldReader) commandField(k string, c *Command) (uint8, error) {
	var err error
	switch k {
	case "op":
		var v uint64
		v, err = r.dec.DecodeUint64()
		c.Op = Op(v)
		if err == nil && (v >= opEnd || !c.Op.Valid()) {
			err = fmt.Errorf("unknown op %d", v)
		}
		return 1, err
	case "key":
		c.Key, err = r.str()
		return 2, err
	case "account":
		c.Account, err = r.str()
		return 4, err
	case "to":
		c.To, err = r.str()
		return 8, err
	case "name":
		c.Name, err = r.str()
		return 16, err
	case "amount":
		c.Amount, err = r.dec.DecodeUint64()
		return 32, err
	}
	return 0, errors.New("unknown field")
}

// str reads a string no longer than fieldBytesMax. The length is checked
// before anything is allocated.
func (r *fieldReader) str() (string, error) {
	n, err := r.dec.DecodeBytesLen()
	if err != nil {
		return "", err
	}
	if n < 0 || n > fieldBytesMax {
		return "", fmt.Errorf("string of %d bytes, limit %d", n, fieldBytesMax)
	}
	if cap(r.scratch) < n {
		r.scratch = make([]byte, n, fieldBytesMax)
	}
	b := r.scratch[:n]
	if err := r.dec.ReadFull(b); err != nil {
		return "", err
	}
	return string(b), nil
}
