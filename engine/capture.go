package engine

import (
	"errors"
	"io"
	"sync"

	"github.com/google/btree"
)

// ErrCaptureOpen is returned by Capture while an earlier capture is open.
var ErrCaptureOpen = errors.New("engine: a capture is already open")

// captureBatch is how many accounts a capture reads per hold of the lock:
// enough that locking costs little, few enough that Apply waits microseconds.
const captureBatch = 512

// Capture is the engine's state frozen at one index, written out by
// WriteState while the engine goes on applying entries. Taking one costs
// O(1) (a lazy clone of the number-order btree); afterwards every account
// the engine changes for the first time is copied aside first, and the
// capture reads those copies instead of the live slots. Key records are
// never changed once written, so the capture keeps the window's chunks as
// they were. A snapshot taken this way is off the write path: the capture
// holds the replica loop for microseconds, not the ~0.3 s per million
// accounts a full encoding takes.
type Capture struct {
	head      stateHeader
	table     *accountTable
	ordered   *btree.BTreeG[uint32]
	holds     *btree.BTreeG[Hold]
	approvals *btree.BTreeG[Approval]
	keys      keyView
	lock      sync.Locker
}

// Capture freezes the state at the current index. Call it where Apply
// cannot run (the caller's write lock). lock is the shared side of that
// same lock: WriteState holds it while it reads live accounts, so Apply and
// the capture never touch a slot at once. Release the capture when done;
// only one can be open at a time.
func (e *Engine) Capture(lock sync.Locker) (*Capture, error) {
	t := e.accounts
	if t.before != nil {
		return nil, ErrCaptureOpen
	}
	t.before = make(map[uint32]slot)
	t.frozen = t.used
	return &Capture{head: e.header(), table: t, ordered: t.ordered.Clone(), holds: e.holds.byID.Clone(), approvals: e.approvals.byID.Clone(), keys: e.keys.view(), lock: lock}, nil
}

// Release ends the capture: the engine stops copying accounts aside. Call
// it where Apply cannot run, like Capture.
func (c *Capture) Release() {
	c.table.before = nil
	c.table.frozen = 0
}

// Index is the index of the last entry the captured state applied.
func (c *Capture) Index() uint64 { return c.head.index }

// Epoch is the epoch of that entry.
func (c *Capture) Epoch() uint64 { return c.head.epoch }

// LastHash is the hash of that entry.
func (c *Capture) LastHash() Hash { return c.head.lastHash }

// Totals are the account count and balance sum of the captured state.
func (c *Capture) Totals() Totals { return c.head.totals }

// WriteState writes the captured state in the canonical encoding, the same
// bytes Engine.WriteState gave at the index of the capture. It may run on
// any goroutine, and once per capture.
func (c *Capture) WriteState(w io.Writer) error {
	return writeState(w, c.head, c.ascend, c.holds, c.approvals, c.keys)
}

// ascend visits the captured accounts in number order, reading them a
// batch at a time under the lock.
func (c *Capture) ascend(visit func(*slot) bool) {
	ids := make([]uint32, 0, captureBatch)
	buf := make([]slot, captureBatch)
	more := true
	flush := func() {
		c.lock.Lock()
		for i, id := range ids {
			buf[i] = c.table.frozenAt(id)
		}
		c.lock.Unlock()
		for i := range ids {
			if more = visit(&buf[i]); !more {
				return
			}
		}
		ids = ids[:0]
	}
	c.ordered.Ascend(func(id uint32) bool {
		if ids = append(ids, id); len(ids) == captureBatch {
			flush()
		}
		return more
	})
	if more && len(ids) > 0 {
		flush()
	}
}
