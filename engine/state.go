package engine

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/google/btree"

	"github.com/zkbank/zkbank/engine/entry"
)

// Versions of the canonical state encoding. A state whose log is at body
// version 1 is written as version 1, byte for byte as before versions
// existed; a later body version adds two fields (version 2).
const (
	stateV1 = 1
	stateV2 = 2
	stateV3 = 3 // and the signer of the current epoch (a sealed log)
	stateV4 = 4 // and each account's flags (frozen)
	stateV5 = 5 // and the holds
)

// ErrCorruptState marks a state stream that cannot be restored.
var ErrCorruptState = errors.New("engine: corrupt state")

// WriteState writes the whole state in its canonical encoding: equal states
// give equal bytes. The layout is documented in docs/format.md:
//
//	uvarint version | uvarint index | uvarint epoch | [32]byte last hash |
//	varint time_ms | uvarint next assigned number |
//	(version 2: uvarint body version | uvarint version since |
//	 uvarint r, r x (str serial | uvarint index), in serial order |
//	 uvarint next token id | uvarint t, t x token, in id order) |
//	(version 3: uvarint signer epoch | bytes signer certificate) |
//	uvarint n, n x account (in number order) | uvarint total balance |
//	(version 5: uvarint next hold id | uvarint h, h x hold, in id order |
//	 uvarint l, l x (byte role | uvarint limit), in role order |
//	 uvarint next approval id | uvarint a, a x approval, in id order) |
//	uvarint k, k x key record (oldest first)
func (e *Engine) WriteState(w io.Writer) error {
	return writeState(w, e.header(), func(visit func(*slot) bool) { e.accounts.ascend("", visit) }, e.holds.byID, e.approvals.byID, e.keys.view())
}

// stateHeader is the part of the state that is not accounts or keys.
type stateHeader struct {
	index    uint64
	epoch    uint64
	lastHash Hash
	timeMs   int64
	nextNum  uint64
	totals   Totals

	bodyVersion  uint32
	versionSince uint64
	revoked      []Revocation // in serial order
	tokens       []Token      // in id order, copied (a capture outlives changes)
	nextToken    uint64
	signer       Signer
	nextHold     uint64
	limits       [roleEnd]uint64
	nextApproval uint64
}

func (e *Engine) header() stateHeader {
	return stateHeader{index: e.index, epoch: e.epoch, lastHash: e.lastHash, timeMs: e.timeMs, nextNum: e.nextNum, totals: e.totals,
		bodyVersion: e.bodyVersion, versionSince: e.versionSince, revoked: e.revoked.sorted(), tokens: e.Tokens(), nextToken: e.tokens.next,
		signer: e.signer, nextHold: e.holds.next, limits: e.approvals.limits, nextApproval: e.approvals.next}
}

// writeState is the one encoder behind Engine.WriteState and
// Capture.WriteState; ascend visits the accounts in number order.
func writeState(w io.Writer, h stateHeader, ascend func(visit func(*slot) bool), holds *btree.BTreeG[Hold], approvals *btree.BTreeG[Approval], keys keyView) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	s := stateWriter{w: bw, v: stateVersion(h.bodyVersion)}
	s.uvarint(s.v)
	s.uvarint(h.index)
	s.uvarint(h.epoch)
	s.raw(h.lastHash[:])
	s.varint(h.timeMs)
	s.uvarint(h.nextNum)
	if h.bodyVersion > BodyV1 {
		s.uvarint(uint64(h.bodyVersion))
		s.uvarint(h.versionSince)
		s.uvarint(uint64(len(h.revoked)))
		for _, r := range h.revoked {
			s.str(r.Serial)
			s.uvarint(r.Index)
		}
		s.uvarint(h.nextToken)
		s.uvarint(uint64(len(h.tokens)))
		for i := range h.tokens {
			s.token(&h.tokens[i])
		}
	}
	if h.bodyVersion >= BodyV3 {
		s.uvarint(h.signer.Epoch)
		s.bytes(h.signer.Cert)
	}
	s.uvarint(h.totals.Accounts)
	ascend(func(a *slot) bool {
		s.account(a)
		return s.err == nil
	})
	s.uvarint(h.totals.Balance)
	if s.v >= stateV5 {
		s.uvarint(h.nextHold)
		s.uvarint(uint64(holds.Len()))
		holds.Ascend(func(hd Hold) bool {
			s.hold(&hd)
			return s.err == nil
		})
		s.limits(&h.limits)
		s.uvarint(h.nextApproval)
		s.uvarint(uint64(approvals.Len()))
		approvals.Ascend(func(a Approval) bool {
			s.approval(&a)
			return s.err == nil
		})
	}
	s.uvarint(uint64(keys.len()))
	keys.each(s.keyRecord)
	if s.err != nil {
		return fmt.Errorf("engine: write state: %w", s.err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("engine: write state: %w", err)
	}
	return nil
}

// StateHash is the SHA-256 of the canonical state encoding. Two engines that
// applied the same log have the same StateHash.
func (e *Engine) StateHash() Hash {
	h := sha256.New()
	if err := e.WriteState(h); err != nil {
		panic(err) // a hash.Hash never fails to write
	}
	var out Hash
	h.Sum(out[:0])
	return out
}

type stateWriter struct {
	v   uint64 // the state version written
	w   *bufio.Writer
	buf [binary.MaxVarintLen64]byte
	err error
}

func (s *stateWriter) raw(b []byte) {
	if s.err == nil {
		_, s.err = s.w.Write(b)
	}
}

func (s *stateWriter) uvarint(v uint64) { s.raw(s.buf[:binary.PutUvarint(s.buf[:], v)]) }
func (s *stateWriter) varint(v int64)   { s.raw(s.buf[:binary.PutVarint(s.buf[:], v)]) }

func (s *stateWriter) str(v string) {
	s.uvarint(uint64(len(v)))
	if s.err == nil {
		_, s.err = s.w.WriteString(v)
	}
}

func (s *stateWriter) bytes(v []byte) {
	s.uvarint(uint64(len(v)))
	s.raw(v)
}

func (s *stateWriter) account(a *slot) {
	s.str(a.number())
	s.str(a.name())
	s.uvarint(a.balance)
	s.uvarint(a.created)
	s.uvarint(a.updated)
	if s.v >= stateV4 {
		s.uvarint(accountFlags(a))
	}
}

// Account flags of a version 4 state, a uvarint after each account.
const (
	flagFrozen      = 1
	accountFlagsAll = flagFrozen
)

func accountFlags(a *slot) uint64 {
	if a.frozen {
		return flagFrozen
	}
	return 0
}

// hold: uvarint id | str from | str to | uvarint amount | uvarint captured
// | varint expires_ms | uvarint created_index | uvarint closed_index (0:
// open) | byte status.
func (s *stateWriter) hold(h *Hold) {
	s.uvarint(h.ID)
	s.str(h.From)
	s.str(h.To)
	s.uvarint(h.Amount)
	s.uvarint(h.Captured)
	s.varint(h.ExpiresMs)
	s.uvarint(h.CreatedIndex)
	s.uvarint(h.ClosedIndex)
	s.raw([]byte{byte(h.Status)})
}

// limits: uvarint l | l x (byte role | uvarint limit), the roles that
// have one, in role order.
func (s *stateWriter) limits(limits *[roleEnd]uint64) {
	n := 0
	for _, l := range limits {
		if l != 0 {
			n++
		}
	}
	s.uvarint(uint64(n))
	for r, l := range limits {
		if l != 0 {
			s.raw([]byte{byte(r)})
			s.uvarint(l)
		}
	}
}

// approval: uvarint id | byte op | str account | str to | uvarint amount
// | str by | uvarint requested_index | varint expires_ms | uvarint
// closed_index (0: pending) | byte status | str closed_by | byte outcome
// (0 unless approved).
func (s *stateWriter) approval(a *Approval) {
	s.uvarint(a.ID)
	s.raw([]byte{byte(a.Op)})
	s.str(a.Account)
	s.str(a.To)
	s.uvarint(a.Amount)
	s.str(a.By)
	s.uvarint(a.RequestedIndex)
	s.varint(a.ExpiresMs)
	s.uvarint(a.ClosedIndex)
	s.raw([]byte{byte(a.Status)})
	s.str(a.ClosedBy)
	s.raw([]byte{byte(a.Outcome)})
}

// token: uvarint id | [32]byte hash | str name | byte role | uvarint n,
// n x str account | uvarint expires_ms (0: never) | uvarint created_index
// | uvarint revoked_index (0: in force).
func (s *stateWriter) token(t *Token) {
	s.uvarint(t.ID)
	s.raw(t.Hash[:])
	s.str(t.Name)
	s.raw([]byte{byte(t.Role)})
	s.uvarint(uint64(len(t.Accounts)))
	for _, a := range t.Accounts {
		s.str(a)
	}
	s.uvarint(uint64(t.ExpiresMs))
	s.uvarint(t.CreatedIndex)
	s.uvarint(t.RevokedIndex)
}

func (s *stateWriter) keyRecord(r *keyRecord, key, number []byte) {
	s.bytes(key)
	s.uvarint(r.index)
	if s.v >= stateV5 {
		s.varint(r.timeMs)
	}
	binary.LittleEndian.PutUint64(s.buf[:8], r.fingerprint)
	s.buf[8] = byte(r.code)
	s.raw(s.buf[:9])
	s.uvarint(r.balances[0])
	s.uvarint(r.balances[1])
	s.bytes(number)
}

// Restore reads a state written by WriteState and returns an engine in that
// state. It checks every invariant it can (order, bounds, totals) and
// returns an error wrapping ErrCorruptState for anything else; it never
// panics on bad input.
func Restore(cfg Config, r io.Reader) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := newEngine(cfg)
	rd := stateReader{r: bufio.NewReaderSize(r, 64<<10)}
	if err := rd.restore(e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptState, err)
	}
	return e, nil
}

type stateReader struct {
	r   *bufio.Reader
	v   uint64 // the state version read
	err error
}

func (rd *stateReader) fail(format string, args ...any) {
	if rd.err == nil {
		rd.err = fmt.Errorf(format, args...)
	}
}

func (rd *stateReader) uvarint() uint64 {
	if rd.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(rd.r)
	rd.err = err
	return v
}

func (rd *stateReader) varint() int64 {
	if rd.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(rd.r)
	rd.err = err
	return v
}

func (rd *stateReader) raw(b []byte) {
	if rd.err == nil {
		_, rd.err = io.ReadFull(rd.r, b)
	}
}

func (rd *stateReader) str(limit int) string {
	n := rd.uvarint()
	if rd.err != nil {
		return ""
	}
	if n > uint64(limit) {
		rd.fail("string of %d bytes, limit %d", n, limit)
		return ""
	}
	b := make([]byte, n)
	rd.raw(b)
	return string(b)
}

func (rd *stateReader) restore(e *Engine) error {
	v := rd.uvarint()
	if rd.err == nil && (v < stateV1 || v > stateV5) {
		return fmt.Errorf("unknown state version %d", v)
	}
	rd.v = v
	e.index = rd.uvarint()
	e.epoch = rd.uvarint()
	rd.raw(e.lastHash[:])
	e.timeMs = rd.varint()
	e.nextNum = rd.uvarint()
	if v >= stateV2 {
		rd.bodyVersion(e)
		rd.revocations(e)
		rd.tokens(e)
	}
	if v >= stateV3 {
		rd.signer(e)
	}
	if rd.err == nil && stateVersion(e.bodyVersion) != v {
		return fmt.Errorf("state version %d with body version %d", v, e.bodyVersion)
	}
	rd.accounts(e)
	if v >= stateV5 {
		rd.holds(e)
		rd.limits(e)
		rd.approvals(e)
	}
	rd.keyRecords(e)
	if rd.err != nil {
		return rd.err
	}
	if _, err := rd.r.ReadByte(); err != io.EOF {
		return errors.New("trailing bytes after state")
	}
	return nil
}

// stateVersion is the state encoding for a log at bodyVersion.
func stateVersion(bodyVersion uint32) uint64 {
	switch {
	case bodyVersion >= BodyV5:
		return stateV5
	case bodyVersion >= BodyV4:
		return stateV4
	case bodyVersion >= BodyV3:
		return stateV3
	case bodyVersion > BodyV1:
		return stateV2
	}
	return stateV1
}

// signer reads a version 3 state's signer: the certificate of the term
// entry that began its epoch, at or below the state's index.
func (rd *stateReader) signer(e *Engine) {
	e.signer.Epoch = rd.uvarint()
	e.signer.Cert = []byte(rd.str(entry.CertBytesMax))
	if rd.err == nil && (e.signer.Epoch > e.epoch || (len(e.signer.Cert) == 0) != (e.signer.Epoch == 0)) {
		rd.fail("signer of epoch %d (%d bytes) in a state at epoch %d", e.signer.Epoch, len(e.signer.Cert), e.epoch)
	}
}

// bodyVersion reads a version 2 state's body version: above 1 (a state
// at version 1 is written as version 1), known to this binary, begun at
// an index it has applied.
func (rd *stateReader) bodyVersion(e *Engine) {
	bv, since := rd.uvarint(), rd.uvarint()
	switch {
	case rd.err != nil:
	case bv <= BodyV1 || bv > BodyVersionMax:
		rd.fail("body version %d (this binary reads 1 to %d): %v", bv, BodyVersionMax, ErrUnknownBodyVersion)
	case since == 0 || since > e.index:
		rd.fail("body version %d since index %d, state at %d", bv, since, e.index)
	}
	e.bodyVersion, e.versionSince = uint32(bv), since
}

// revocations reads a version 2 state's revoked certificates: valid
// serials, in order, revoked at indexes the state applied.
func (rd *stateReader) revocations(e *Engine) {
	n := rd.uvarint()
	if n > RevocationsMax {
		rd.fail("%d revocations, limit %d", n, RevocationsMax)
		return
	}
	prev := ""
	for i := uint64(0); i < n && rd.err == nil; i++ {
		serial, index := rd.str(32), rd.uvarint()
		switch {
		case rd.err != nil:
		case !ValidSerial(serial) || (i > 0 && serial <= prev):
			rd.fail("revocation %q out of order or not a serial", serial)
		case index == 0 || index > e.index:
			rd.fail("revocation %s at index %d, state at %d", serial, index, e.index)
		default:
			e.revoked.add(serial, index)
		}
		prev = serial
	}
}

// tokens reads a version 2 state's tokens: in id order, below the next
// id, each valid as create_token made it, created and revoked at indexes
// the state applied.
func (rd *stateReader) tokens(e *Engine) {
	e.tokens.next = rd.uvarint()
	n := rd.uvarint()
	if n > TokensMax {
		rd.fail("%d tokens, limit %d", n, TokensMax)
		return
	}
	var prev uint64
	for i := uint64(0); i < n && rd.err == nil; i++ {
		t := rd.token()
		if rd.err != nil {
			return
		}
		spec := Command{Op: OpCreateToken, Name: t.Name, Token: &TokenSpec{Role: t.Role, Accounts: t.Accounts, Hash: t.Hash}}
		_, dup := e.tokens.byHash[t.Hash]
		switch {
		case t.ID <= prev || t.ID >= e.tokens.next:
			rd.fail("token %d out of order or at or past the next id %d", t.ID, e.tokens.next)
		case checkToken(&spec) != CodeOK || dup || t.ExpiresMs < 0:
			rd.fail("token %d is not a valid token", t.ID)
		case t.CreatedIndex == 0 || t.CreatedIndex > e.index || t.RevokedIndex > e.index || (t.RevokedIndex != 0 && t.RevokedIndex < t.CreatedIndex):
			rd.fail("token %d: indexes %d and %d, state at %d", t.ID, t.CreatedIndex, t.RevokedIndex, e.index)
		default:
			e.tokens.add(&t)
		}
		prev = t.ID
	}
}

func (rd *stateReader) token() Token {
	var t Token
	t.ID = rd.uvarint()
	rd.raw(t.Hash[:])
	t.Name = rd.str(TokenNameLenMax)
	var role [1]byte
	rd.raw(role[:])
	t.Role = Role(role[0])
	n := rd.uvarint()
	if n > TokenAccountsMax {
		rd.fail("token %d bound to %d accounts, limit %d", t.ID, n, TokenAccountsMax)
		return t
	}
	for i := uint64(0); i < n && rd.err == nil; i++ {
		t.Accounts = append(t.Accounts, rd.str(AccountNumberLenMax))
	}
	t.ExpiresMs = int64(rd.uvarint())
	t.CreatedIndex = rd.uvarint()
	t.RevokedIndex = rd.uvarint()
	return t
}

func (rd *stateReader) account(index uint64) Account {
	a := Account{
		Number:       rd.str(AccountNumberLenMax),
		Name:         rd.str(fieldBytesMax),
		Balance:      rd.uvarint(),
		CreatedIndex: rd.uvarint(),
		UpdatedIndex: rd.uvarint(),
	}
	if rd.v >= stateV4 {
		flags := rd.uvarint()
		if flags&^accountFlagsAll != 0 {
			rd.fail("account %s: unknown flags %#x", a.Number, flags)
		}
		a.Frozen = flags&flagFrozen != 0
	}
	if rd.err != nil {
		return a
	}
	if !ValidAccountNumber(a.Number) {
		rd.fail("invalid account number %q", a.Number)
	}
	if n, ok := NormalizeName(a.Name); !ok || n != a.Name {
		rd.fail("account %s: invalid name", a.Number)
	}
	if a.Balance > MaxAmount {
		rd.fail("account %s: balance %d over the limit", a.Number, a.Balance)
	}
	if a.CreatedIndex > a.UpdatedIndex || a.UpdatedIndex > index {
		rd.fail("account %s: indexes %d/%d out of range", a.Number, a.CreatedIndex, a.UpdatedIndex)
	}
	return a
}

func (rd *stateReader) accounts(e *Engine) {
	n := rd.uvarint()
	e.accounts = newAccountTable(int(min(n, 1<<22)))
	prev := ""
	for i := uint64(0); i < n && rd.err == nil; i++ {
		a := rd.account(e.index)
		if rd.err != nil {
			return
		}
		if i > 0 && a.Number <= prev {
			rd.fail("accounts out of order at %q", a.Number)
			return
		}
		prev = a.Number
		if e.totals.Balance+a.Balance > MaxTotalBalance {
			rd.fail("total balance over the limit")
			return
		}
		if e.accounts.full() {
			rd.fail("more accounts than the table holds")
			return
		}
		e.accounts.insert(a)
		e.totals.Accounts++
		e.totals.Balance += a.Balance
	}
	if total := rd.uvarint(); rd.err == nil && total != e.totals.Balance {
		rd.fail("total balance %d, accounts sum to %d", total, e.totals.Balance)
	}
}

// holds reads a version 5 state's holds: in id order, below the next id,
// each as create_hold made it and, when closed, as it was closed, at
// indexes the state applied; an open hold's from holds its amount.
func (rd *stateReader) holds(e *Engine) {
	closed := readLived(rd, "hold", &e.holds.next, HoldsMax+e.cfg.ClosedHoldsKept, rd.hold,
		func(h *Hold, prev uint64) string { return holdProblem(h, prev, e) },
		func(h Hold) {
			if h.Status == HoldOpen {
				from, _ := e.accounts.get(h.From)
				from.held += h.Amount // checked against its balance below
			}
			e.holds.add(h)
		})
	switch {
	case rd.err != nil:
		return
	case e.holds.open > HoldsMax || closed > e.cfg.ClosedHoldsKept:
		rd.fail("%d open and %d closed holds, limits %d and %d", e.holds.open, closed, HoldsMax, e.cfg.ClosedHoldsKept)
	case e.holds.next == 0:
		rd.fail("next hold id 0")
	case e.holds.open == 0:
		return // nothing held: no balance to check
	}
	e.accounts.ascend("", func(s *slot) bool {
		if s.held > s.balance {
			rd.fail("account %s: holds of %d on a balance of %d", s.number(), s.held, s.balance)
			return false
		}
		return true
	})
}

// readLived reads the next id and the records of a lifecycle table (holds
// or approvals, in id order, at most limit), checking each with problem
// (prev: the id before it) and filing it with add; it returns how many
// were closed, counted as read (the table forgets past its bound as it
// fills, so it cannot tell).
func readLived[T lived](rd *stateReader, what string, next *uint64, limit int, read func() T, problem func(v *T, prev uint64) string, add func(T)) (closed int) {
	*next = rd.uvarint()
	n := rd.uvarint()
	if n > uint64(limit) {
		rd.fail("%d %ss, limit %d", n, what, limit)
		return 0
	}
	var prev uint64
	for i := uint64(0); i < n && rd.err == nil; i++ {
		v := read()
		if rd.err != nil {
			return closed
		}
		if v.closedAt() != 0 {
			closed++
		}
		if p := problem(&v, prev); p != "" {
			rd.fail("%s %d: %s", what, v.id(), p)
			return closed
		}
		prev = v.id()
		add(v)
	}
	return closed
}

// holdProblem says what is wrong with a hold read from a state ("" for
// nothing), prev the id before it.
func holdProblem(h *Hold, prev uint64, e *Engine) string {
	spec := Command{Op: OpCreateHold, Account: h.From, To: h.To, Amount: h.Amount, ExpiresInMs: 1}
	switch {
	case h.ID <= prev || h.ID >= e.holds.next:
		return fmt.Sprintf("out of order or at or past the next id %d", e.holds.next)
	case checkHold(&spec) != CodeOK:
		return "not a valid hold"
	case h.CreatedIndex == 0 || h.CreatedIndex > e.index:
		return fmt.Sprintf("created at %d, state at %d", h.CreatedIndex, e.index)
	case h.Status == HoldOpen && (h.ClosedIndex != 0 || h.Captured != 0):
		return "open, with a closing"
	case h.Status != HoldOpen && (h.ClosedIndex < h.CreatedIndex || h.ClosedIndex > e.index):
		return fmt.Sprintf("closed at %d, created at %d, state at %d", h.ClosedIndex, h.CreatedIndex, e.index)
	case h.Status == 0 || h.Status >= holdStatusEnd || (h.Status != HoldCaptured && h.Captured != 0) || h.Captured > h.Amount:
		return fmt.Sprintf("status %d with %d captured of %d", h.Status, h.Captured, h.Amount)
	}
	if _, ok := e.accounts.get(h.From); h.Status == HoldOpen && !ok {
		return "open from an account that does not exist"
	}
	return ""
}

func (rd *stateReader) hold() Hold {
	h := Hold{ID: rd.uvarint(), From: rd.str(AccountNumberLenMax), To: rd.str(AccountNumberLenMax),
		Amount: rd.uvarint(), Captured: rd.uvarint(), ExpiresMs: rd.varint(), CreatedIndex: rd.uvarint(), ClosedIndex: rd.uvarint()}
	var status [1]byte
	rd.raw(status[:])
	h.Status = HoldStatus(status[0])
	return h
}

// limits reads a version 5 state's approval limits: roles that take one,
// in order, each once, each above 0.
func (rd *stateReader) limits(e *Engine) {
	n := rd.uvarint()
	if n > roleEnd {
		rd.fail("%d approval limits", n)
		return
	}
	prev := Role(0)
	for i := uint64(0); i < n && rd.err == nil; i++ {
		var role [1]byte
		rd.raw(role[:])
		r, limit := Role(role[0]), rd.uvarint()
		spec := Command{Op: OpSetApprovalLimit, Amount: limit, Token: &TokenSpec{Role: r}}
		if rd.err == nil && (r <= prev || limit == 0 || checkApproval(&spec) != CodeOK) {
			rd.fail("approval limit %d for role %d", limit, r)
		}
		e.approvals.limits[r%roleEnd], prev = limit, r
	}
}

// approvals reads a version 5 state's approvals: in id order, below the
// next id, each a money command as its principal sent it, and when closed
// closed as a decision or an expiry makes it, at indexes the state applied.
func (rd *stateReader) approvals(e *Engine) {
	closed := readLived(rd, "approval", &e.approvals.next, ApprovalsMax+e.cfg.ClosedHoldsKept, rd.approval,
		func(a *Approval, prev uint64) string { return approvalProblem(a, prev, e) }, e.approvals.add)
	if rd.err == nil && (e.approvals.next == 0 || e.approvals.open > ApprovalsMax || closed > e.cfg.ClosedHoldsKept) {
		rd.fail("next approval %d; %d pending and %d closed approvals", e.approvals.next, e.approvals.open, closed)
	}
}

func (rd *stateReader) approval() Approval {
	var a Approval
	var b [1]byte
	a.ID = rd.uvarint()
	rd.raw(b[:])
	a.Op = Op(b[0])
	a.Account, a.To = rd.str(AccountNumberLenMax), rd.str(AccountNumberLenMax)
	a.Amount, a.By = rd.uvarint(), rd.str(PrincipalLenMax)
	a.RequestedIndex, a.ExpiresMs, a.ClosedIndex = rd.uvarint(), rd.varint(), rd.uvarint()
	rd.raw(b[:])
	a.Status = ApprovalStatus(b[0])
	a.ClosedBy = rd.str(PrincipalLenMax)
	rd.raw(b[:])
	a.Outcome = Code(b[0])
	return a
}

// approvalProblem says what is wrong with an approval read from a state
// ("" for nothing), prev the id before it.
func approvalProblem(a *Approval, prev uint64, e *Engine) string {
	cmd := a.command()
	_, byOK := ParsePrincipal(a.By)
	pending := a.Status == ApprovalPending
	switch {
	case a.ID <= prev || a.ID >= e.approvals.next:
		return fmt.Sprintf("out of order or at or past the next id %d", e.approvals.next)
	case a.Op != OpDeposit && a.Op != OpWithdraw && a.Op != OpTransfer || cmd.Check() != CodeOK || !byOK:
		return "not a money command of a principal"
	case a.RequestedIndex == 0 || a.RequestedIndex > e.index:
		return fmt.Sprintf("asked for at %d, state at %d", a.RequestedIndex, e.index)
	case a.Status == 0 || a.Status >= approvalStatusEnd || pending != (a.ClosedIndex == 0):
		return fmt.Sprintf("status %d, closed at %d", a.Status, a.ClosedIndex)
	case !pending && (a.ClosedIndex < a.RequestedIndex || a.ClosedIndex > e.index):
		return fmt.Sprintf("closed at %d, asked for at %d, state at %d", a.ClosedIndex, a.RequestedIndex, e.index)
	case (a.Status == ApprovalApproved) != a.Outcome.Valid() || (a.ClosedBy != "" && a.Status != ApprovalApproved && a.Status != ApprovalRejected):
		return fmt.Sprintf("status %v with outcome %d, closed by %q", a.Status, a.Outcome, a.ClosedBy)
	}
	return ""
}

func (rd *stateReader) keyRecords(e *Engine) {
	n := rd.uvarint()
	if n > keyWindowLimit+EntryCommandsMax {
		rd.fail("%d key records, more than a window holds", n)
		return
	}
	var lastIndex uint64
	for i := uint64(0); i < n && rd.err == nil; i++ {
		key, number, rec := rd.keyRecord(e.index, e.timeMs)
		if rd.err != nil {
			return
		}
		if rec.index < lastIndex {
			rd.fail("key records out of order at %q", key)
			return
		}
		lastIndex = rec.index
		if _, dup := e.keys.find([]byte(key)); dup {
			rd.fail("key %q repeated", key)
			return
		}
		e.keys.remember([]byte(key), number, rec)
	}
}

func (rd *stateReader) keyRecord(index uint64, timeMs int64) (key, number string, rec keyRecord) {
	key = rd.str(PrincipalLenMax + len(keyScopeSep) + KeyLenMax)
	rec.index = rd.uvarint()
	if rd.v >= stateV5 {
		rec.timeMs = rd.varint()
	}
	var fixed [9]byte
	rd.raw(fixed[:])
	rec.fingerprint = binary.LittleEndian.Uint64(fixed[:8])
	rec.code = Code(fixed[8])
	rec.balances = [2]uint64{rd.uvarint(), rd.uvarint()}
	number = rd.str(AccountNumberLenMax)
	if rd.err != nil {
		return key, number, rec
	}
	switch {
	case !validScopedKey(key):
		rd.fail("invalid key %q", key)
	case rec.index == 0 || rec.index > index || rec.timeMs > timeMs:
		rd.fail("key %q: index %d or time %d out of range", key, rec.index, rec.timeMs)
	case !rec.code.Valid() || rec.balances[0] > MaxAmount || rec.balances[1] > MaxAmount:
		rd.fail("key %q: bad result", key)
	case number != "" && !ValidAccountNumber(number):
		rd.fail("key %q: bad account number", key)
	}
	return key, number, rec
}
