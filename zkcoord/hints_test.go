package zkcoord

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkbank/zkbank/engine/entry"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// TestTailerTakesHintsAndFallsBackToZooKeeper: a hint that continues the
// chain is delivered without ZooKeeper (here one ZooKeeper never gets);
// one that does not is dropped for ZooKeeper's entry; once hints stop, the
// tailer reads ZooKeeper again.
func TestTailerTakesHintsAndFallsBackToZooKeeper(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	term, log, head := lead(t, ctx, connect(t, zktest.Shared(t, 1), nil), 10)
	a := log.NewAppender(term, head, 4)
	hints := make(chan *entry.Envelope, 8)
	var hinted atomic.Uint64
	tl := log.TailWith(ctx, Head{}, TailOptions{Recheck: 100 * time.Millisecond, Hints: hints, HintQuiet: 300 * time.Millisecond, Hinted: &hinted})

	first := appendAll(t, a, 3, "zk")
	expectEntries(t, tl, first...)

	stranger := envelope(t, 4, term.Epoch, entry.Hash{7}, "stranger")
	hints <- stranger
	fourth := appendAll(t, a, 1, "zk4")
	expectEntries(t, tl, fourth...)
	if hinted.Load() != 0 {
		t.Fatalf("%d hints delivered, want the stranger dropped", hinted.Load())
	}

	// An entry ZooKeeper never saw, vouched for by the hint alone.
	pushed := envelope(t, 5, term.Epoch, fourth[0].Hash(), "pushed")
	hints <- pushed
	expectEntries(t, tl, pushed)
	if hinted.Load() != 1 {
		t.Fatalf("%d hints delivered, want 1", hinted.Load())
	}
	// Once hints stop, the tailer reads ZooKeeper again, where entry 5 is
	// another one: entry 6 does not continue the tailer's chain.
	appendAll(t, a, 2, "zk5")
	select {
	case e, ok := <-tl.Entries():
		if ok {
			t.Fatalf("tailer delivered entry %d after the hint", e.Index)
		}
		if !errors.Is(tl.Err(), ErrDiverged) {
			t.Fatalf("tailer stopped with %v, want ErrDiverged", tl.Err())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the tailer never read ZooKeeper after the hints stopped")
	}
}

func expectEntries(t *testing.T, tl *Tailer, want ...*entry.Envelope) {
	t.Helper()
	for _, w := range want {
		select {
		case got, ok := <-tl.Entries():
			if !ok {
				t.Fatalf("tailer stopped before %d: %v", w.Index, tl.Err())
			}
			if got.Index != w.Index || got.Hash() != w.Hash() {
				t.Fatalf("got entry %d (%s), want %d (%s)", got.Index, got.Hash(), w.Index, w.Hash())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("tailer stuck before %d", w.Index)
		}
	}
}
