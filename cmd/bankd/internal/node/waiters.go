package node

import (
	"sync"
	"time"

	"github.com/zkbank/zkbank/engine"
)

// Outcome is what one command did.
type Outcome struct {
	Code     engine.Code
	Replayed bool             // a retry answered with the first outcome
	Accounts []engine.Account // the touched accounts afterwards, on success
	Token    uint64           // the token a create_token made or a revoke_token revoked
	Hold     *engine.Hold     // the hold a hold op created, captured or voided
	Approval *engine.Approval // the approval a command asked for, or a decision decided
}

// request is one Submit call waiting for its commands' outcomes; the
// batcher packs requests into entries (groupcommit.Request).
type request struct {
	cmds   []engine.Command
	bytes  int // upper bound of cmds' encoded size
	done   chan struct{}
	queued time.Time // when Submit took it, for the batch_wait stage

	index uint64 // set before done closes
	out   []Outcome
	err   error
}

func newRequest(cmds []engine.Command) *request {
	return &request{cmds: cmds, bytes: engine.EncodedBytesMax(cmds), done: make(chan struct{}), queued: time.Now()}
}

func (r *request) Items() int { return len(r.cmds) }
func (r *request) Bytes() int { return r.bytes }

func (r *request) finish(index uint64, out []Outcome, err error) {
	r.index, r.out, r.err = index, out, err
	close(r.done)
}

// entryWaiter is the set of requests whose commands went into one entry,
// in order. Only an entry of the same epoch at that index is theirs: one
// leader per epoch, and it never writes an index twice.
type entryWaiter struct {
	epoch uint64
	reqs  []*request
}

// waiters maps log indexes to the requests waiting for them. Each request
// is finished exactly once: whoever removes its waiter from the map.
type waiters struct {
	mu sync.Mutex
	m  map[uint64]*entryWaiter
}

func (w *waiters) add(index uint64, ew *entryWaiter) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = make(map[uint64]*entryWaiter)
	}
	w.m[index] = ew
}

func (w *waiters) take(index uint64) *entryWaiter {
	w.mu.Lock()
	defer w.mu.Unlock()
	ew := w.m[index]
	delete(w.m, index)
	return ew
}

// resolve answers the requests waiting on e with its results.
func (w *waiters) resolve(e *engine.Entry, results []engine.Result) {
	ew := w.take(e.Index)
	if ew == nil {
		return
	}
	if ew.epoch != e.Epoch {
		ew.fail(e.Index, ErrLeadershipLost) // another leader's entry took the index
		return
	}
	off := 0
	for _, r := range ew.reqs {
		out := make([]Outcome, len(r.cmds))
		for i := range out {
			res := &results[off+i]
			out[i] = Outcome{Code: res.Code, Replayed: res.Replayed, Accounts: res.Accounts(), Token: res.Token, Hold: res.Hold, Approval: res.Approval}
		}
		off += len(r.cmds)
		r.finish(e.Index, out, nil)
	}
}

// fail ends the requests waiting on index with err, unless they were
// answered already.
func (w *waiters) fail(index uint64, err error) {
	if ew := w.take(index); ew != nil {
		ew.fail(index, err)
	}
}

func (ew *entryWaiter) fail(index uint64, err error) {
	for _, r := range ew.reqs {
		r.finish(index, nil, err)
	}
}
