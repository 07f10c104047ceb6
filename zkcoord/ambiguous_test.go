package zkcoord

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zkbank/zkbank/engine/entry"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// TestAmbiguousAppendsAreResolvedByReading cuts the leader off while
// appends are in flight. None is retried: each in-flight append ends with
// ErrAmbiguous or a definite failure, and the term ends. After healing, the
// node leads again (a new epoch fences the old one); Recover reads the log
// to its end, and Landed tells, for every pending entry, whether it is in
// the log. The landed ones form a prefix, and nothing else was written.
func TestAmbiguousAppendsAreResolvedByReading(t *testing.T) {
	ens := zktest.Shared(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cutter := &zktest.Cutter{}
	s := connect(t, ens, cutter)
	el := s.Campaign(ctx, Candidate{ID: "leader"})
	_, term := awaitTerm(t, 10*time.Second, el)
	log := s.Log(10)
	head, err := log.Recover(ctx, Head{})
	if err != nil {
		t.Fatal(err)
	}
	base := appendAll(t, log.NewAppender(term, head, 8), 5, "base")
	a := log.NewAppender(term, Head{Index: 5, Hash: base[4].Hash()}, 16)
	var pend []*Pending
	for i := 0; i < 16; i++ {
		p, err := a.Append(ctx, entry.BodyV1, body(50, "inflight"), 0)
		if err != nil {
			break
		}
		pend = append(pend, p)
		if i == 3 {
			<-pend[0].Done() // at least one lands, then cut mid-stream
			cutter.Cut()
		}
	}
	ambiguous := 0
	for _, p := range pend {
		<-p.Done()
		if errors.Is(p.Err(), ErrAmbiguous) {
			ambiguous++
		}
	}
	<-term.Done()
	t.Logf("%d appends in flight, %d ambiguous; term ended: %v", len(pend), ambiguous, term.Err())
	if _, err := a.Append(ctx, entry.BodyV1, body(1, "after"), 0); err == nil {
		t.Fatal("appender accepted an append after a failure")
	}

	cutter.Resume()
	_, term2 := awaitTerm(t, 20*time.Second, el)
	if term2.Epoch <= term.Epoch {
		t.Fatalf("epoch %d after %d", term2.Epoch, term.Epoch)
	}
	head2, err := log.Recover(ctx, Head{Index: 5, Hash: base[4].Hash()})
	if err != nil {
		t.Fatal(err)
	}
	landed := 0
	for i, p := range pend {
		ok, err := log.Landed(p.Entry)
		if err != nil {
			t.Fatal(err)
		}
		if p.Err() == nil && !ok {
			t.Fatalf("acknowledged entry %d is not in the log", p.Entry.Index)
		}
		if ok && i != landed {
			t.Fatalf("entry %d landed after a gap", p.Entry.Index)
		}
		if ok {
			landed++
		}
	}
	if head2.Index != 5+uint64(landed) {
		t.Fatalf("log head %d, but %d of the pending entries landed after 5", head2.Index, landed)
	}
	if landed == 0 {
		t.Fatal("the acknowledged first append did not land")
	}
	t.Logf("resolved by reading: %d of %d landed", landed, len(pend))
}
