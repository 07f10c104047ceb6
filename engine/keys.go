package engine

// keyRecord is what the engine remembers about an idempotency key: enough
// to answer a retry with the first outcome, and no more, because a busy
// node holds hundreds of thousands of them.
type keyRecord struct {
	key         string
	index       uint64    // entry that first used the key
	fingerprint uint64    // of the command, without its key
	balances    [2]uint64 // balances of the touched accounts right after
	number      string    // account created (the command may not name it)
	code        Code
}

// replay rebuilds the first outcome for a retry of c. Balances are as they
// were right after the first application; names and creation indexes are
// read from the current state.
func (r *keyRecord) replay(e *Engine, c *Command) Result {
	res := Result{Code: r.code, Replayed: true}
	if r.code != CodeOK {
		return res
	}
	numbers := [2]string{c.Account, c.To}
	n := 1
	switch c.Op {
	case OpCreateAccount:
		numbers[0] = r.number
	case OpTransfer:
		n = 2
	}
	for i := 0; i < n; i++ {
		a := Account{Number: numbers[i], Balance: r.balances[i], UpdatedIndex: r.index}
		if cur, ok := e.byNumber[a.Number]; ok {
			a.Name, a.CreatedIndex = cur.Name, cur.CreatedIndex
		}
		if c.Op == OpCreateAccount || c.Op == OpRename {
			a.Name, _ = NormalizeName(c.Name)
		}
		res.add(a)
	}
	return res
}

func newKeyRecord(key string, index, fp uint64, c *Command, r *Result) keyRecord {
	rec := keyRecord{key: key, index: index, fingerprint: fp, code: r.Code}
	for i, a := range r.Accounts() {
		rec.balances[i] = a.Balance
	}
	if c.Op == OpCreateAccount && r.Code == CodeOK {
		rec.number = r.accounts[0].Number
	}
	return rec
}

// keyChunk is the unit of the window's queue. Fixed-size chunks mean that
// growing and shrinking the queue never copies records.
const keyChunk = 4096

// keyWindow remembers keys in the order they were first used, so that
// forgetting is a function of the log alone: a key first used by entry i is
// remembered by entries up to i+KeyWindowEntries, and the oldest keys go
// first when more than KeyWindowMax are held.
type keyWindow struct {
	byKey  map[string]uint64 // key -> absolute position in the queue
	chunks [][]keyRecord     // records at positions head..tail-1
	head   uint64            // absolute position of the oldest record
	tail   uint64            // absolute position of the next record
}

func newKeyWindow() keyWindow {
	return keyWindow{byKey: make(map[string]uint64)}
}

func (w *keyWindow) len() int { return int(w.tail - w.head) }

// at returns the record at absolute position pos (head <= pos < tail).
func (w *keyWindow) at(pos uint64) *keyRecord {
	first := w.head / keyChunk
	return &w.chunks[pos/keyChunk-first][pos%keyChunk]
}

func (w *keyWindow) lookup(key string) (*keyRecord, bool) {
	pos, ok := w.byKey[key]
	if !ok {
		return nil, false
	}
	return w.at(pos), true
}

// remember adds a record for a key that lookup did not find.
func (w *keyWindow) remember(rec keyRecord) {
	if w.tail%keyChunk == 0 {
		w.chunks = append(w.chunks, make([]keyRecord, keyChunk))
	}
	w.byKey[rec.key] = w.tail
	*w.at(w.tail) = rec
	w.tail++
}

// expire forgets the keys that fell out of the window after applying the
// entry at index.
func (w *keyWindow) expire(index uint64, cfg Config) {
	for w.head < w.tail {
		old := w.at(w.head)
		tooOld := index-old.index >= cfg.KeyWindowEntries
		tooMany := w.len() > cfg.KeyWindowMax
		if !tooOld && !tooMany {
			return
		}
		delete(w.byKey, old.key)
		*old = keyRecord{} // release the strings
		w.head++
		if w.head%keyChunk == 0 {
			w.chunks[0] = nil
			w.chunks = w.chunks[1:]
		}
	}
}

// each visits the records oldest first.
func (w *keyWindow) each(fn func(*keyRecord)) {
	for pos := w.head; pos < w.tail; pos++ {
		fn(w.at(pos))
	}
}
