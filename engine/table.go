package engine

import (
	"hash/maphash"
	"math"
	"sync"

	"github.com/google/btree"
)

// slotChunk is how many accounts one chunk of the table holds. Chunks never
// move, so a *slot stays valid until its account is deleted.
const slotChunk = 4096

// maxSlots bounds the table: slot ids are uint32 and one id is the pivot.
const maxSlots = math.MaxUint32 - 1

// pivotID is the id List's search key stands for in btree comparisons.
const pivotID = math.MaxUint32

// slot is one account as the table stores it. The number and the name share
// one string (one allocation), and the indexes refer to slots by a uint32
// id, so a million accounts cost about a hundred bytes each and give the
// garbage collector one pointer each to follow.
type slot struct {
	text    string // number, then name
	numLen  uint8
	frozen  bool
	balance uint64
	held    uint64 // of balance, what the open holds from it reserve
	created uint64 // log index of the entry that created the account
	updated uint64 // log index of the entry that last changed it
}

func (s *slot) number() string { return s.text[:s.numLen] }
func (s *slot) name() string   { return s.text[s.numLen:] }

func (s *slot) setName(name string) { s.text = s.number() + name }

// available is the money withdrawals, transfers and new holds may use.
func (s *slot) available() uint64 { return s.balance - s.held }

func (s *slot) account() Account {
	return Account{Number: s.number(), Name: s.name(), Balance: s.balance, CreatedIndex: s.created, UpdatedIndex: s.updated, Frozen: s.frozen, Held: s.held}
}

// accountTable holds the accounts: slots in fixed chunks, an index from a
// hash of the number to the slot, and a btree of slot ids in number order
// for listing and the canonical encoding.
type accountTable struct {
	chunks  [][]slot
	used    uint32   // slots handed out, free or not
	free    []uint32 // slots of deleted accounts, reused first
	seed    maphash.Seed
	index   hashIndex
	ordered *btree.BTreeG[uint32]

	// before holds, while a Capture is open, each slot below frozen as it
	// was when the capture began, copied just before its first change.
	before map[uint32]slot
	frozen uint32

	// pivot is the number List searches from; pivotMu keeps concurrent
	// readers from sharing it.
	pivotMu sync.Mutex
	pivot   string
}

func newAccountTable(sizeHint int) *accountTable {
	t := &accountTable{
		seed:  maphash.MakeSeed(),
		index: newHashIndex(sizeHint),
	}
	t.ordered = btree.NewG(32, func(a, b uint32) bool { return t.numberOf(a) < t.numberOf(b) })
	return t
}

func (t *accountTable) numberOf(id uint32) string {
	if id == pivotID {
		return t.pivot
	}
	return t.at(id).number()
}

func (t *accountTable) at(id uint32) *slot { return &t.chunks[id/slotChunk][id%slotChunk] }

// full reports whether no account can be added.
func (t *accountTable) full() bool { return len(t.free) == 0 && t.used >= maxSlots }

// find returns the slot holding number.
func (t *accountTable) find(number string) (uint32, bool) {
	return t.index.find(indexHash(t.seed, number), func(id uint32) bool { return t.at(id).number() == number })
}

// get returns the account with this number, for reading.
func (t *accountTable) get(number string) (*slot, bool) {
	id, ok := t.find(number)
	if !ok {
		return nil, false
	}
	return t.at(id), true
}

// change returns the account with this number, for changing in place.
func (t *accountTable) change(number string) (*slot, bool) {
	id, ok := t.find(number)
	if !ok {
		return nil, false
	}
	t.keep(id)
	return t.at(id), true
}

// keep copies a slot aside for the open capture, if there is one and the
// slot has not changed since it began.
func (t *accountTable) keep(id uint32) {
	if t.before == nil || id >= t.frozen {
		return
	}
	if _, kept := t.before[id]; !kept {
		t.before[id] = *t.at(id)
	}
}

// frozenAt returns the slot as the open capture sees it.
func (t *accountTable) frozenAt(id uint32) slot {
	if s, kept := t.before[id]; kept {
		return s
	}
	return *t.at(id)
}

// insert adds an account whose number is not in the table; the caller
// checked full first.
func (t *accountTable) insert(a Account) *slot {
	id := t.newID()
	t.keep(id)
	s := t.at(id)
	*s = slot{text: a.Number + a.Name, numLen: uint8(len(a.Number)), frozen: a.Frozen, balance: a.Balance, held: a.Held, created: a.CreatedIndex, updated: a.UpdatedIndex}
	t.index.insert(indexHash(t.seed, a.Number), id)
	t.ordered.ReplaceOrInsert(id)
	return s
}

func (t *accountTable) newID() uint32 {
	if n := len(t.free); n > 0 {
		id := t.free[n-1]
		t.free = t.free[:n-1]
		return id
	}
	if t.used%slotChunk == 0 {
		t.chunks = append(t.chunks, make([]slot, slotChunk))
	}
	t.used++
	return t.used - 1
}

// remove deletes the account with this number, which is in the table.
func (t *accountTable) remove(number string) {
	id, _ := t.find(number)
	t.index.remove(indexHash(t.seed, number), id)
	t.ordered.Delete(id)
	t.keep(id)
	*t.at(id) = slot{}
	t.free = append(t.free, id)
}

// ascend visits the accounts in number order, from the first whose number
// is at least from ("" for all), until visit returns false.
func (t *accountTable) ascend(from string, visit func(*slot) bool) {
	each := func(id uint32) bool { return visit(t.at(id)) }
	if from == "" {
		t.ordered.Ascend(each)
		return
	}
	t.pivotMu.Lock()
	defer t.pivotMu.Unlock()
	t.pivot = from
	t.ordered.AscendGreaterOrEqual(pivotID, each)
}
