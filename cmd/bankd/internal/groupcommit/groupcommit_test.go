package groupcommit

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

type req struct {
	id, items, bytes int
}

func (r req) Items() int { return r.items }
func (r req) Bytes() int { return r.bytes }

// sent is one group the fake sender got, with its landing.
type sent struct {
	g      Group[req]
	landed func()
}

// harness runs a batcher whose sends go to a channel and land only when
// the test says so.
type harness struct {
	t     *testing.T
	queue chan req
	stop  chan struct{}
	sends chan sent
	fail  func(Group[req]) error
	done  chan []req
}

func start(t *testing.T, lim Limits) *harness {
	h := &harness{t: t, queue: make(chan req, 1000), stop: make(chan struct{}), sends: make(chan sent, 1000), done: make(chan []req, 1)}
	go func() {
		h.done <- Run(h.stop, h.queue, lim, func(g Group[req], landed func()) error {
			if h.fail != nil {
				if err := h.fail(g); err != nil {
					return err
				}
			}
			h.sends <- sent{g, landed}
			return nil
		})
	}()
	t.Cleanup(func() {
		select {
		case <-h.stop:
		default:
			close(h.stop)
		}
	})
	return h
}

func (h *harness) push(rs ...req) {
	for _, r := range rs {
		h.queue <- r
	}
}

func (h *harness) next() sent {
	h.t.Helper()
	select {
	case s := <-h.sends:
		return s
	case <-time.After(10 * time.Second):
		h.t.Fatal("no group sent")
		return sent{}
	}
}

// noSend checks that nothing is sent while the batcher has had the chance
// to: it is given the queue's requests and a moment.
func (h *harness) noSend() {
	h.t.Helper()
	select {
	case s := <-h.sends:
		h.t.Fatalf("sent %v while it should wait", ids(s.g))
	case <-time.After(50 * time.Millisecond):
	}
}

func ids(g Group[req]) []int {
	var out []int
	for _, r := range g.Requests {
		out = append(out, r.id)
	}
	return out
}

func one(id int) req { return req{id: id, items: 1, bytes: 10} }

func TestRequestsQueuedWhileAGroupIsInFlightGoInTheNext(t *testing.T) {
	h := start(t, Limits{Items: 100, Bytes: 1000, Inflight: 1})
	h.push(one(1))
	first := h.next()
	if got := ids(first.g); !slices.Equal(got, []int{1}) {
		t.Fatalf("first group %v", got)
	}
	h.push(one(2), one(3), one(4))
	h.noSend() // the one slot is taken
	first.landed()
	if got := ids(h.next().g); !slices.Equal(got, []int{2, 3, 4}) {
		t.Fatalf("second group %v, want every request queued meanwhile", got)
	}
}

func TestARequestThatDoesNotFitIsCarriedToTheNextGroup(t *testing.T) {
	h := start(t, Limits{Items: 5, Bytes: 1000, Inflight: 1})
	h.push(one(0))
	g0 := h.next()
	h.push(req{1, 2, 1}, req{2, 2, 1}, req{3, 2, 1}, req{4, 1, 1}) // 2+2 fit, 3 does not
	g0.landed()
	g1 := h.next()
	if got := ids(g1.g); !slices.Equal(got, []int{1, 2}) || g1.g.Items != 4 {
		t.Fatalf("group %v of %d items", got, g1.g.Items)
	}
	g1.landed()
	if got := ids(h.next().g); !slices.Equal(got, []int{3, 4}) {
		t.Fatalf("next group %v, want the carried request first", got)
	}
}

func TestBytesBoundAGroupAndALargeRequestGoesAlone(t *testing.T) {
	h := start(t, Limits{Items: 100, Bytes: 100, Inflight: 1})
	h.push(req{0, 1, 10})
	g0 := h.next()
	h.push(req{1, 1, 60}, req{2, 1, 50}, req{3, 1, 500}, req{4, 1, 1})
	g0.landed()
	var groups [][]int
	for range 3 {
		s := h.next()
		groups = append(groups, ids(s.g))
		s.landed()
	}
	want := [][]int{{1}, {2}, {3}} // 60+50 > 100; 500 alone; then 4 follows
	for i := range want {
		if !slices.Equal(groups[i], want[i]) {
			t.Fatalf("groups %v, want %v then [4]", groups, want)
		}
	}
	if got := ids(h.next().g); !slices.Equal(got, []int{4}) {
		t.Fatalf("last group %v", got)
	}
}

func TestNeverMoreThanInflightGroupsInFlight(t *testing.T) {
	h := start(t, Limits{Items: 1, Bytes: 1000, Inflight: 3})
	h.push(one(1), one(2), one(3), one(4), one(5))
	var out []sent
	for range 3 {
		out = append(out, h.next())
	}
	h.noSend()
	out[1].landed()
	out[1].landed() // a second call frees nothing more
	if got := ids(h.next().g); !slices.Equal(got, []int{4}) {
		t.Fatalf("after one landing: %v", got)
	}
	h.noSend()
}

// TestASmallGroupWaitsForALandingAndTakesWhatQueued is the leader's rule
// for small entries.
func TestASmallGroupWaitsForALandingAndTakesWhatQueued(t *testing.T) {
	h := start(t, Limits{Items: 1000, Bytes: 1 << 20, Inflight: 8, SmallItems: 64, SmallInflight: 1})
	h.push(one(1))
	first := h.next()
	h.push(one(2), one(3))
	h.noSend() // slots are free, but a small group waits for the one in flight
	h.push(one(4))
	first.landed()
	if got := ids(h.next().g); !slices.Equal(got, []int{2, 3, 4}) {
		t.Fatalf("group %v", got)
	}
}

func TestALargeGroupDoesNotWait(t *testing.T) {
	h := start(t, Limits{Items: 1000, Bytes: 1 << 20, Inflight: 8, SmallItems: 64, SmallInflight: 1})
	h.push(one(1))
	h.next()
	h.push(req{2, 64, 10})
	if got := ids(h.next().g); !slices.Equal(got, []int{2}) {
		t.Fatalf("group %v", got)
	}
}

func TestStopReturnsWhatWasNotSent(t *testing.T) {
	h := start(t, Limits{Items: 2, Bytes: 1000, Inflight: 1})
	h.push(one(1))
	h.next() // never lands
	h.push(one(2), one(3), one(4))
	h.noSend()
	close(h.stop)
	got := <-h.done
	close(h.queue)
	for r := range h.queue { // what the batcher had not taken yet
		got = append(got, r)
	}
	if len(got) != 3 || got[0].id != 2 || got[1].id != 3 || got[2].id != 4 {
		t.Fatalf("unsent and still queued: %v, want 2, 3, 4: none lost, doubled or reordered", got)
	}
}

func TestASendErrorStopsAndReturnsTheGroupAndTheCarry(t *testing.T) {
	queue, stop := make(chan req, 10), make(chan struct{})
	for i := range 3 {
		queue <- one(i)
	}
	got := Run(stop, queue, Limits{Items: 2, Bytes: 1000}, func(Group[req], func()) error { return errors.New("boom") })
	if len(got) != 3 || got[0].id != 0 || got[2].id != 2 {
		t.Fatalf("unsent %v, want the group of 0 and 1 and the carried 2", got)
	}
}

// TestEveryRequestIsSentOnceInOrderWithinLimits: whatever the sizes and
// the landing order, requests come out in order, each exactly once, in
// groups within the limits (a request over them alone), with never more
// than Inflight groups in flight.
func TestEveryRequestIsSentOnceInOrderWithinLimits(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		lim := Limits{Items: rapid.IntRange(1, 20).Draw(rt, "items"), Bytes: rapid.IntRange(1, 200).Draw(rt, "bytes"),
			Inflight: rapid.IntRange(1, 4).Draw(rt, "inflight"), SmallItems: rapid.IntRange(0, 10).Draw(rt, "small"), SmallInflight: rapid.IntRange(1, 3).Draw(rt, "smallInflight")}
		n := rapid.IntRange(1, 60).Draw(rt, "n")
		queue, stop := make(chan req, n), make(chan struct{})
		for i := range n {
			queue <- req{i, rapid.IntRange(1, 25).Draw(rt, fmt.Sprint("i", i)), rapid.IntRange(1, 250).Draw(rt, fmt.Sprint("b", i))}
		}
		sends := make(chan sent, n)
		done := make(chan []req, 1)
		inflight, most := 0, 0
		go func() {
			done <- Run(stop, queue, lim, func(g Group[req], landed func()) error {
				sends <- sent{g, landed}
				return nil
			})
		}()
		var pending []sent
		next := 0
		for next < n {
			s, ok := receive(sends, len(pending) == 0)
			if !ok && len(pending) == 0 {
				rt.Fatalf("stuck at request %d with nothing in flight", next)
			}
			if !ok { // the batcher may be waiting: land one of those in flight
				i := rapid.IntRange(0, len(pending)-1).Draw(rt, "land")
				pending[i].landed()
				pending = slices.Delete(pending, i, i+1)
				inflight--
				continue
			}
			inflight++
			most = max(most, inflight)
			if len(s.g.Requests) > 1 && (s.g.Items > lim.Items || s.g.Bytes > lim.Bytes) {
				rt.Fatalf("group %v over the limits %+v", ids(s.g), lim)
			}
			for _, r := range s.g.Requests {
				if r.id != next {
					rt.Fatalf("got request %d, want %d", r.id, next)
				}
				next++
			}
			pending = append(pending, s)
		}
		close(stop)
		if left := <-done; len(left) != 0 {
			rt.Fatalf("unsent %v", left)
		}
		if most > lim.Inflight {
			rt.Fatalf("%d in flight, limit %d", most, lim.Inflight)
		}
	})
}

// receive takes a sent group: at once if one is there, or, when wait is
// set (nothing is in flight, so the batcher must send), within 10 s.
func receive(sends <-chan sent, wait bool) (sent, bool) {
	select {
	case s := <-sends:
		return s, true
	default:
	}
	if !wait {
		return sent{}, false
	}
	select {
	case s := <-sends:
		return s, true
	case <-time.After(10 * time.Second):
		return sent{}, false
	}
}
