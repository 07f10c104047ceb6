package node

import (
	"context"
	"errors"
	"testing"
)

// fakeAppend is an append that lands when told to.
type fakeAppend struct {
	id   int
	done chan struct{}
	err  error
}

func newFake(id int, landed bool, err error) *fakeAppend {
	f := &fakeAppend{id: id, done: make(chan struct{}), err: err}
	if landed {
		close(f.done)
	}
	return f
}

func (f *fakeAppend) Done() <-chan struct{} { return f.done }
func (f *fakeAppend) Err() error            { return f.err }

func ids(fs []*fakeAppend) []int {
	var out []int
	for _, f := range fs {
		out = append(out, f.id)
	}
	return out
}

func feedOf(fs ...*fakeAppend) chan *fakeAppend {
	ch := make(chan *fakeAppend, len(fs))
	for _, f := range fs {
		ch <- f
	}
	return ch
}

func TestTakeLandedStopsAtTheFirstAppendInFlight(t *testing.T) {
	feed := feedOf(newFake(2, true, nil), newFake(3, false, nil), newFake(4, true, nil))
	landed, next, ok := takeLanded(context.Background(), newFake(1, true, nil), feed, 100)
	if got := ids(landed); !ok || len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("landed %v ok %v, want [1 2] true", got, ok)
	}
	if next == nil || next.id != 3 {
		t.Fatalf("next %v, want append 3 handed back, not waited for", next)
	}
	if len(feed) != 1 {
		t.Fatalf("feed holds %d, want append 4 left in it", len(feed))
	}
}

func TestTakeLandedWaitsForTheFirstAppend(t *testing.T) {
	first := newFake(1, false, nil)
	got := make(chan []*fakeAppend)
	go func() {
		landed, _, _ := takeLanded(context.Background(), first, feedOf(), 100)
		got <- landed
	}()
	select {
	case l := <-got:
		t.Fatalf("returned %v before the first append landed", ids(l))
	default:
	}
	close(first.done)
	if l := <-got; len(l) != 1 || l[0] != first {
		t.Fatalf("landed %v, want [1]", ids(l))
	}
}

func TestTakeLandedStopsAtAFailedAppend(t *testing.T) {
	feed := feedOf(newFake(2, true, nil), newFake(3, true, errors.New("fenced")), newFake(4, true, nil))
	landed, next, ok := takeLanded(context.Background(), newFake(1, true, nil), feed, 100)
	if got := ids(landed); ok || len(got) != 2 || got[1] != 2 || next != nil {
		t.Fatalf("landed %v next %v ok %v, want [1 2] nil false", got, next, ok)
	}
}

func TestTakeLandedHonoursTheLimit(t *testing.T) {
	feed := feedOf(newFake(2, true, nil), newFake(3, true, nil))
	landed, next, ok := takeLanded(context.Background(), newFake(1, true, nil), feed, 2)
	if got := ids(landed); !ok || len(got) != 2 || next != nil || len(feed) != 1 {
		t.Fatalf("landed %v next %v ok %v feed %d, want [1 2] nil true 1", got, next, ok, len(feed))
	}
}

func TestTakeLandedEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if landed, _, ok := takeLanded(ctx, newFake(1, false, nil), feedOf(), 100); ok || len(landed) != 0 {
		t.Fatalf("landed %v ok %v, want nothing, false", ids(landed), ok)
	}
}
