package peer

// The binary format of a write a follower forwards to the leader: the
// commands in the log's own msgpack encoding, and the answer as compact
// msgpack arrays. JSON cost the leader a quarter of its CPU on forwarded
// batches (docs/benchmarks.md); the public API stays JSON.

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/engine"
)

// ContentType marks a body in this format; forwarded commands say their
// body version in a parameter (commandsType).
const ContentType = "application/vnd.zkbank.peer+msgpack"

// commandsType is the content type of forwarded commands in a body of
// version bv.
func commandsType(bv uint32) string {
	return ContentType + "; bv=" + strconv.FormatUint(uint64(bv), 10)
}

// commandsVersion reads the body version from a content type written by
// commandsType.
func commandsVersion(contentType string) (uint32, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != ContentType {
		return 0, fmt.Errorf("peer: content type %q; send %s", contentType, ContentType)
	}
	bv, err := strconv.ParseUint(params["bv"], 10, 32)
	if err != nil || bv == 0 {
		return 0, fmt.Errorf("peer: content type %q names no body version", contentType)
	}
	return uint32(bv), nil
}

// Limits a decoded answer is held to: it answers at most one entry's
// commands, and a command touches at most two accounts.
const (
	accountsPerOutcomeMax = 2
	stringBytesMax        = 1024
)

// EncodeResult is the answer to a forwarded write: [index, [outcome...]],
// each outcome [code, replayed, [account...], token?, hold?, approval?], each account
// [number, name, balance, created_index, updated_index, frozen?, held?],
// a hold [id, from, to, amount, captured, expires_ms, created_index,
// closed_index, status] (nil before an approval), an approval [id, op,
// account, to, amount, by, requested_index, expires_ms, closed_index,
// status, closed_by, outcome]. The optional tails appear only when set: a
// frozen mark once the log is at body version 4, a held amount, a hold
// and an approval once it is at 5, which every member then reads.
func EncodeResult(index uint64, outs []node.Outcome) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(16 + 64*len(outs))
	enc := msgpack.NewEncoder(&buf)
	err := errors.Join(enc.EncodeArrayLen(2), enc.EncodeUint(index), enc.EncodeArrayLen(len(outs)))
	for i := 0; err == nil && i < len(outs); i++ {
		err = encodeOutcome(enc, &outs[i])
	}
	if err != nil {
		return nil, fmt.Errorf("peerwire: encode result of entry %d: %w", index, err)
	}
	return buf.Bytes(), nil
}

// encodeOutcome writes [code, replayed, [account...]], the token id as a
// fourth element when there is one (the token ops), and the hold as a
// fifth (the hold ops; the fourth is then 0), and the approval as a sixth
// (the fifth then nil when there is no hold).
func encodeOutcome(enc *msgpack.Encoder, o *node.Outcome) error {
	n := 3
	switch {
	case o.Approval != nil:
		n = 6
	case o.Hold != nil:
		n = 5
	case o.Token != 0:
		n = 4
	}
	err := errors.Join(enc.EncodeArrayLen(n), enc.EncodeUint(uint64(o.Code)), enc.EncodeBool(o.Replayed), enc.EncodeArrayLen(len(o.Accounts)))
	for i := 0; err == nil && i < len(o.Accounts); i++ {
		err = encodeAccount(enc, &o.Accounts[i])
	}
	if err == nil && n >= 4 {
		err = enc.EncodeUint(o.Token)
	}
	if err == nil && n >= 5 {
		err = encodeHold(enc, o.Hold)
	}
	if err == nil && n == 6 {
		a := o.Approval
		err = errors.Join(enc.EncodeArrayLen(12), enc.EncodeUint(a.ID), enc.EncodeUint(uint64(a.Op)), enc.EncodeString(a.Account),
			enc.EncodeString(a.To), enc.EncodeUint(a.Amount), enc.EncodeString(a.By), enc.EncodeUint(a.RequestedIndex),
			enc.EncodeInt(a.ExpiresMs), enc.EncodeUint(a.ClosedIndex), enc.EncodeUint(uint64(a.Status)), enc.EncodeString(a.ClosedBy),
			enc.EncodeUint(uint64(a.Outcome)))
	}
	return err
}

func encodeHold(enc *msgpack.Encoder, h *engine.Hold) error {
	if h == nil {
		return enc.EncodeNil()
	}
	return errors.Join(enc.EncodeArrayLen(9), enc.EncodeUint(h.ID), enc.EncodeString(h.From), enc.EncodeString(h.To),
		enc.EncodeUint(h.Amount), enc.EncodeUint(h.Captured), enc.EncodeInt(h.ExpiresMs), enc.EncodeUint(h.CreatedIndex),
		enc.EncodeUint(h.ClosedIndex), enc.EncodeUint(uint64(h.Status)))
}

func encodeAccount(enc *msgpack.Encoder, a *engine.Account) error {
	fields := 5
	switch {
	case a.Held != 0:
		fields = 7
	case a.Frozen:
		fields = 6
	}
	err := errors.Join(enc.EncodeArrayLen(fields), enc.EncodeString(a.Number), enc.EncodeString(a.Name),
		enc.EncodeUint(a.Balance), enc.EncodeUint(a.CreatedIndex), enc.EncodeUint(a.UpdatedIndex))
	if err == nil && fields >= 6 {
		err = enc.EncodeBool(a.Frozen)
	}
	if err == nil && fields == 7 {
		err = enc.EncodeUint(a.Held)
	}
	return err
}

// DecodeResult reads an answer written by EncodeResult for want commands.
// Anything else is an error; it never panics.
func DecodeResult(raw []byte, want int) (uint64, []node.Outcome, error) {
	rd := bytes.NewReader(raw)
	r := reader{dec: msgpack.NewDecoder(rd)}
	r.arrayLen(2, 2)
	index := r.uint()
	n := r.arrayLen(want, want)
	outs := make([]node.Outcome, n)
	for i := 0; r.err == nil && i < n; i++ {
		outs[i] = r.outcome()
	}
	if r.err == nil && rd.Len() != 0 {
		r.err = fmt.Errorf("%d trailing bytes", rd.Len())
	}
	if r.err != nil {
		return 0, nil, fmt.Errorf("peerwire: decode result: %w", r.err)
	}
	return index, outs, nil
}

// reader keeps the first decoding error, so that the decoder reads as a
// list of fields; after an error every read returns a zero value.
type reader struct {
	dec *msgpack.Decoder
	err error
}

func (r *reader) arrayLen(low, high int) int {
	if r.err != nil {
		return 0
	}
	n, err := r.dec.DecodeArrayLen()
	if err == nil && (n < low || n > high) {
		err = fmt.Errorf("array of %d, want %d to %d", n, low, high)
	}
	r.err = err
	if err != nil {
		return 0
	}
	return n
}

func (r *reader) uint() uint64 {
	if r.err != nil {
		return 0
	}
	v, err := r.dec.DecodeUint64()
	r.err = err
	return v
}

func (r *reader) int() int64 {
	if r.err != nil {
		return 0
	}
	v, err := r.dec.DecodeInt64()
	r.err = err
	return v
}

func (r *reader) bool() bool {
	if r.err != nil {
		return false
	}
	v, err := r.dec.DecodeBool()
	r.err = err
	return v
}

func (r *reader) str() string {
	if r.err != nil {
		return ""
	}
	n, err := r.dec.DecodeBytesLen()
	if err == nil && (n < 0 || n > stringBytesMax) {
		err = fmt.Errorf("string of %d bytes, limit %d", n, stringBytesMax)
	}
	if err != nil {
		r.err = err
		return ""
	}
	b := make([]byte, n)
	r.err = r.dec.ReadFull(b)
	return string(b)
}

func (r *reader) outcome() node.Outcome {
	fields := r.arrayLen(3, 6)
	code := engine.Code(r.uint())
	if r.err == nil && !code.Valid() {
		r.err = fmt.Errorf("unknown code %d", code)
	}
	o := node.Outcome{Code: code, Replayed: r.bool()}
	if n := r.arrayLen(0, accountsPerOutcomeMax); n > 0 {
		o.Accounts = make([]engine.Account, n)
		for i := range o.Accounts {
			fields := r.arrayLen(5, 7)
			o.Accounts[i] = engine.Account{Number: r.str(), Name: r.str(), Balance: r.uint(), CreatedIndex: r.uint(), UpdatedIndex: r.uint()}
			if fields >= 6 {
				o.Accounts[i].Frozen = r.bool()
			}
			if fields == 7 {
				o.Accounts[i].Held = r.uint()
			}
		}
	}
	if fields >= 4 {
		o.Token = r.uint()
	}
	if fields >= 5 {
		o.Hold = r.hold()
	}
	if fields == 6 {
		o.Approval = r.approval()
	}
	return o
}

func (r *reader) approval() *engine.Approval {
	r.arrayLen(12, 12)
	a := &engine.Approval{ID: r.uint(), Op: engine.Op(r.uint()), Account: r.str(), To: r.str(), Amount: r.uint(), By: r.str(),
		RequestedIndex: r.uint(), ExpiresMs: r.int(), ClosedIndex: r.uint(), Status: engine.ApprovalStatus(r.uint()), ClosedBy: r.str(),
		Outcome: engine.Code(r.uint())}
	if r.err == nil && (a.Status.String() == "invalid" || !a.Op.Valid()) {
		r.err = fmt.Errorf("approval %d: unknown status %d or op %d", a.ID, a.Status, a.Op)
	}
	return a
}

// nil reads a msgpack nil if one is next.
func (r *reader) nil() bool {
	if r.err != nil {
		return false
	}
	c, err := r.dec.PeekCode()
	if err != nil {
		r.err = err
		return false
	}
	if c != msgpcode.Nil {
		return false
	}
	r.err = r.dec.DecodeNil()
	return true
}

func (r *reader) hold() *engine.Hold {
	if r.nil() {
		return nil
	}
	r.arrayLen(9, 9)
	h := &engine.Hold{ID: r.uint(), From: r.str(), To: r.str(), Amount: r.uint(), Captured: r.uint(), ExpiresMs: r.int(),
		CreatedIndex: r.uint(), ClosedIndex: r.uint(), Status: engine.HoldStatus(r.uint())}
	if r.err == nil && h.Status.String() == "invalid" {
		r.err = fmt.Errorf("hold %d: unknown status %d", h.ID, h.Status)
	}
	return h
}
