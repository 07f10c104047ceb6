// Package groupcommit is the one group-commit batcher of bankd: requests
// queue while earlier groups are in flight, and the next group takes all
// that fit. The leader uses it to pack client commands into log entries
// (one fenced ZooKeeper append each); a follower uses it to pack the
// writes it forwards into calls to the leader. Everything it sends goes
// through a function it is given, so its tests drive it with fakes (as
// cockroachdb/pebble's commit pipeline is tested).
//
// The rules, in order, for each group:
//
//  1. take the first request: the one carried over from the last group,
//     or the next from the queue;
//  2. wait for an in-flight slot (at most Limits.Inflight groups in
//     flight), while more requests queue;
//  3. take queued requests without waiting, until the queue is empty or
//     one does not fit (Items, Bytes): that one is carried to the next
//     group;
//  4. a small group (fewer than Limits.SmallItems items) waits while
//     Limits.SmallInflight groups are in flight, taking what queues until
//     one lands: every group has a fixed cost (a quorum write in
//     ZooKeeper, a journal fsync on each node) whatever its size, so on a
//     busy machine fewer, larger groups win;
//  5. send it. Groups are sent in order, from one goroutine.
package groupcommit

import "sync"

// Request is what the batcher packs: its size in items and in bytes (an
// upper bound of its encoding).
type Request interface {
	Items() int
	Bytes() int
}

// Limits bound one group and the pipeline.
type Limits struct {
	Items    int // most items in one group (a request larger alone still goes, alone)
	Bytes    int // most bytes in one group
	Inflight int // groups in flight at once (default 1)
	// SmallItems and SmallInflight hold small groups (rule 4); zero
	// SmallItems turns the rule off.
	SmallItems    int
	SmallInflight int
}

// Group is one group to send.
type Group[R Request] struct {
	Requests []R
	Items    int
	Bytes    int
}

// Send starts sending a group and returns without waiting for it; landed
// must be called exactly once, when the group's outcome is known (success
// or not), to free its in-flight slot. An error means the group was not
// sent: the batcher stops and returns it with whatever it carried.
type Send[R Request] func(g Group[R], landed func()) error

// Run packs requests from queue and sends them until stop is closed or
// send fails. It returns the requests it holds unsent (a group not sent,
// a carried request): the caller fails them, and they may be retried
// elsewhere, since none of them was sent.
func Run[R Request](stop <-chan struct{}, queue <-chan R, lim Limits, send Send[R]) (unsent []R) {
	b := batcher[R]{stop: stop, queue: queue, lim: lim, landings: make(chan struct{}, 1)}
	b.lim.Inflight = max(b.lim.Inflight, 1)
	for {
		g, ok := b.next()
		if !ok {
			return b.unsent(g)
		}
		b.mu.Lock()
		b.inflight++
		b.mu.Unlock()
		landed := b.onceLanded()
		if err := send(g, landed); err != nil {
			landed()
			return b.unsent(g)
		}
	}
}

type batcher[R Request] struct {
	stop     <-chan struct{}
	queue    <-chan R
	lim      Limits
	carry    []R           // at most one request
	landings chan struct{} // capacity 1: a landing since the last wait

	mu       sync.Mutex
	inflight int
}

// next collects the next group (rules 1 to 4); ok is false when stop
// closed first, and the group then holds what was collected.
func (b *batcher[R]) next() (g Group[R], ok bool) {
	first, ok := b.first()
	if !ok {
		return g, false
	}
	g.add(first)
	for b.busy(b.lim.Inflight) {
		if !b.waitLanded() {
			return g, false
		}
	}
	b.topUp(&g)
	for len(b.carry) == 0 && g.Items < b.lim.SmallItems && b.busy(b.lim.SmallInflight) {
		if !b.waitLanded() {
			return g, false
		}
		b.topUp(&g)
	}
	return g, true
}

func (b *batcher[R]) first() (R, bool) {
	if len(b.carry) > 0 {
		r := b.carry[0]
		b.carry = b.carry[:0]
		return r, true
	}
	select {
	case r := <-b.queue:
		return r, true
	case <-b.stop:
		var zero R
		return zero, false
	}
}

// topUp adds queued requests without waiting, until the queue is empty or
// one does not fit: that one is carried.
func (b *batcher[R]) topUp(g *Group[R]) {
	for {
		select {
		case r := <-b.queue:
			if g.Items+r.Items() > b.lim.Items || g.Bytes+r.Bytes() > b.lim.Bytes {
				b.carry = append(b.carry, r)
				return
			}
			g.add(r)
		default:
			return
		}
	}
}

func (g *Group[R]) add(r R) {
	g.Requests = append(g.Requests, r)
	g.Items += r.Items()
	g.Bytes += r.Bytes()
}

// busy reports whether at least n groups are in flight.
func (b *batcher[R]) busy(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inflight >= n
}

// waitLanded waits for a group to land; false when stop closed first.
func (b *batcher[R]) waitLanded() bool {
	select {
	case <-b.landings:
		return true
	case <-b.stop:
		return false
	}
}

// onceLanded is a group's landed function: it frees one slot, once.
func (b *batcher[R]) onceLanded() func() {
	var once sync.Once
	return func() { once.Do(b.land) }
}

func (b *batcher[R]) land() {
	b.mu.Lock()
	b.inflight--
	b.mu.Unlock()
	select {
	case b.landings <- struct{}{}:
	default:
	}
}

func (b *batcher[R]) unsent(g Group[R]) []R {
	return append(g.Requests, b.carry...)
}
