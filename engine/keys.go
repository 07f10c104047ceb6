package engine

import (
	"bytes"
	"hash/maphash"
)

// keyRecord is what the engine remembers about an idempotency key: enough
// to answer a retry with the first outcome, and no more, because a busy
// node holds hundreds of thousands of them. The key, and the number of an
// account the command created, are in its chunk's text; a record holds no
// pointer, so the garbage collector never looks inside the window.
type keyRecord struct {
	index       uint64    // entry that first used the key
	timeMs      int64     // its effective time (kept from body version 5)
	fingerprint uint64    // of the command, without its key
	balances    [2]uint64 // balances of the touched accounts right after
	textOff     uint32    // of the key, then the created account's number
	keyLen      uint8
	numLen      uint8
	code        Code
}

// replay rebuilds the first outcome for a retry of c. Balances are as they
// were right after the first application; names, creation indexes, held
// amounts and holds are read from the current state. A hold op's accounts
// are its hold's: a retry long after the hold was forgotten
// (Config.ClosedHoldsKept) answers its code and no accounts.
func (r *keyRecord) replay(e *Engine, c *Command, created string) Result {
	res := Result{Code: r.code, Replayed: true}
	if r.code == CodeOK && c.Op.isTokenOp() {
		res.Token = r.balances[0]
	}
	var approval Approval
	switch id := c.Approval; {
	case r.code == CodeApprovalPending:
		id = r.balances[0]
		fallthrough
	case c.Op == OpApprove || c.Op == OpReject:
		var ok bool
		if approval, ok = e.approvals.get(id); ok {
			res.Approval = &approval
		}
	}
	if r.code != CodeOK || !c.Op.namesAccounts() {
		return res
	}
	numbers := [2]string{c.Account, c.To}
	n := 1
	switch c.Op {
	case OpCreateAccount:
		numbers[0] = created
	case OpTransfer, OpCaptureHold:
		n = 2
	case OpApprove, OpReject: // the accounts of the command it applied
		numbers, n = [2]string{approval.Account, approval.To}, 0
		if c.Op == OpApprove && res.Approval != nil {
			n = 1
			if approval.Op == OpTransfer {
				n = 2
			}
		}
	}
	if c.Op.isHoldOp() {
		id := c.Hold
		if c.Op == OpCreateHold {
			id = r.balances[1] // the id it was given; a create touches one account
		}
		h, ok := e.holds.get(id)
		if !ok {
			return res
		}
		res.Hold, numbers = &h, [2]string{h.From, h.To}
	}
	for i := 0; i < n; i++ {
		a := Account{Number: numbers[i], Balance: r.balances[i], UpdatedIndex: r.index}
		if cur, ok := e.accounts.get(a.Number); ok {
			a.Name, a.CreatedIndex, a.Frozen, a.Held = cur.name(), cur.created, cur.frozen, cur.held
		}
		if c.Op.isFreeze() {
			a.Frozen = c.Op == OpFreezeAccount
		}
		if c.Op == OpCreateAccount || c.Op == OpRename {
			a.Name, _ = NormalizeName(c.Name)
		}
		res.add(a)
	}
	return res
}

// newKeyRecord returns the record of a first use and the number of the
// account it created, if any.
func newKeyRecord(index uint64, timeMs int64, fp uint64, c *Command, r *Result) (keyRecord, string) {
	rec := keyRecord{index: index, timeMs: timeMs, fingerprint: fp, code: r.Code}
	for i, a := range r.Accounts() {
		rec.balances[i] = a.Balance
	}
	if c.Op.isTokenOp() {
		rec.balances[0] = r.Token
	}
	if c.Op == OpCreateHold && r.Hold != nil {
		rec.balances[1] = r.Hold.ID
	}
	if r.Code == CodeApprovalPending && r.Approval != nil {
		rec.balances[0] = r.Approval.ID // no account moved: the id it was given
	}
	if c.Op == OpCreateAccount && r.Code == CodeOK {
		return rec, r.accounts[0].Number
	}
	return rec, ""
}

// keyChunk is the unit of the window's queue. Fixed-size chunks mean that
// growing and shrinking the queue never copies records.
const keyChunk = 4096

// keyWindowLimit bounds KeyWindowMax so that positions in the window fit
// the 32 bits the index keeps of them.
const keyWindowLimit = 1 << 30

type keyChunkData struct {
	records [keyChunk]keyRecord
	text    []byte
}

// keyWindow remembers keys in the order they were first used, so that
// forgetting is a function of the log alone: a key first used by entry i is
// remembered by entries up to i+KeyWindowEntries, and the oldest keys go
// first when more than KeyWindowMax are held.
//
// The index maps a hash of the key to the low 32 bits of its position.
type keyWindow struct {
	seed   maphash.Seed
	index  hashIndex
	chunks []*keyChunkData // records at positions head..tail-1
	head   uint64          // absolute position of the oldest record
	tail   uint64          // absolute position of the next record
}

func newKeyWindow() keyWindow {
	return keyWindow{seed: maphash.MakeSeed(), index: newHashIndex(0)}
}

func (w *keyWindow) len() int { return int(w.tail - w.head) }

func (w *keyWindow) chunk(pos uint64) *keyChunkData { return w.chunks[pos/keyChunk-w.head/keyChunk] }

// at returns the record at absolute position pos (head <= pos < tail).
func (w *keyWindow) at(pos uint64) *keyRecord { return &w.chunk(pos).records[pos%keyChunk] }

// text returns the key and the created number of the record at pos; the
// bytes are the window's, not to be kept.
func (w *keyWindow) text(pos uint64) (key, number []byte) {
	return recordText(w.at(pos), w.chunk(pos).text)
}

// recordText cuts a record's key and created number out of its chunk's text.
func recordText(r *keyRecord, text []byte) (key, number []byte) {
	b := text[r.textOff:]
	return b[:r.keyLen], b[r.keyLen : int(r.keyLen)+int(r.numLen)]
}

// widen turns the low 32 bits of a position in the window back into it.
func (w *keyWindow) widen(low uint32) uint64 { return w.head + uint64(low-uint32(w.head)) }

func (w *keyWindow) find(key []byte) (uint64, bool) {
	low, ok := w.index.find(indexHashBytes(w.seed, key), func(low uint32) bool {
		k, _ := w.text(w.widen(low))
		return bytes.Equal(k, key)
	})
	return w.widen(low), ok
}

// lookup returns the record of key and the number its command created.
func (w *keyWindow) lookup(key []byte) (*keyRecord, string, bool) {
	pos, ok := w.find(key)
	if !ok {
		return nil, "", false
	}
	_, number := w.text(pos)
	return w.at(pos), string(number), true
}

// remember adds a record for a key that lookup did not find; key and
// number are at most 255 bytes (a scoped key, ValidAccountNumber).
func (w *keyWindow) remember(key []byte, number string, rec keyRecord) {
	if w.tail%keyChunk == 0 {
		w.chunks = append(w.chunks, &keyChunkData{text: make([]byte, 0, keyChunk*24)})
	}
	c := w.chunk(w.tail)
	rec.textOff, rec.keyLen, rec.numLen = uint32(len(c.text)), uint8(len(key)), uint8(len(number))
	c.text = append(append(c.text, key...), number...)
	c.records[w.tail%keyChunk] = rec
	w.index.insert(indexHashBytes(w.seed, key), uint32(w.tail))
	w.tail++
}

// expire forgets the keys that fell out of the window after applying the
// entry at index, telling spill of each first (nil: none told).
func (w *keyWindow) expire(index uint64, cfg Config, spill func(r *keyRecord, key, number []byte)) {
	for w.head < w.tail {
		old := w.at(w.head)
		tooOld := index-old.index >= cfg.KeyWindowEntries
		tooMany := w.len() > cfg.KeyWindowMax
		if !tooOld && !tooMany {
			return
		}
		if spill != nil {
			key, number := w.text(w.head)
			spill(old, key, number)
		}
		w.forget(w.head)
		w.head++
		if w.head%keyChunk == 0 {
			w.chunks[0] = nil
			w.chunks = w.chunks[1:]
		}
	}
}

func (w *keyWindow) forget(pos uint64) {
	key, _ := w.text(pos)
	w.index.remove(indexHashBytes(w.seed, key), uint32(pos))
}

// keyView is the window as it stood at one moment: records are never
// changed once written and chunks are never reused, so a view stays valid
// while the window moves on (a Capture reads one on another goroutine).
type keyView struct {
	chunks     []*keyChunkData
	texts      [][]byte // each chunk's text as it was
	head, tail uint64
}

func (w *keyWindow) view() keyView {
	v := keyView{chunks: append([]*keyChunkData(nil), w.chunks...), texts: make([][]byte, len(w.chunks)), head: w.head, tail: w.tail}
	for i, c := range w.chunks {
		v.texts[i] = c.text
	}
	return v
}

func (v keyView) len() int { return int(v.tail - v.head) }

// each visits the records oldest first, with their key and created number.
func (v keyView) each(fn func(r *keyRecord, key, number []byte)) {
	for pos := v.head; pos < v.tail; pos++ {
		i := pos/keyChunk - v.head/keyChunk
		r := &v.chunks[i].records[pos%keyChunk]
		key, number := recordText(r, v.texts[i])
		fn(r, key, number)
	}
}
