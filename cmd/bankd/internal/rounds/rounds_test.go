package rounds

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestACallerNeverSharesARoundThatStartedBeforeIt: every caller gets the
// result of a round that began after it arrived.
func TestACallerNeverSharesARoundThatStartedBeforeIt(t *testing.T) {
	var started atomic.Int64
	r := New(func() (int64, error) {
		n := started.Add(1)
		time.Sleep(2 * time.Millisecond)
		return n, nil
	})
	const callers, calls = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			for range calls {
				arrived := started.Load()
				got, err := r.Join(context.Background())
				if err != nil || got <= arrived {
					errs <- errors.New("a caller shared a round that began before it arrived")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

// TestCallersThatArriveDuringARoundShareTheNext: while a round runs,
// every caller that arrives joins one next round, and no more run.
func TestCallersThatArriveDuringARoundShareTheNext(t *testing.T) {
	entered, release := make(chan int64, 2), make(chan struct{})
	var rounds atomic.Int64
	r := New(func() (int64, error) {
		n := rounds.Add(1)
		entered <- n
		<-release
		return n, nil
	})
	first := r.join()
	if n := <-entered; n != 1 {
		t.Fatalf("round %d entered first", n)
	}
	const callers = 20
	var next [callers]*round[int64]
	for i := range next {
		next[i] = r.join() // arrives while round 1 runs
	}
	for _, rd := range next {
		if rd != next[0] || rd == first {
			t.Fatal("callers that arrived during round 1 did not share one next round")
		}
	}
	release <- struct{}{}
	if n := <-entered; n != 2 {
		t.Fatalf("round %d entered second", n)
	}
	release <- struct{}{}
	<-next[0].done
	if next[0].v != 2 || rounds.Load() != 2 {
		t.Fatalf("the callers got round %d after %d rounds, want 2 and 2", next[0].v, rounds.Load())
	}
}

func TestJoinReturnsTheRoundsErrorAndHonoursTheContext(t *testing.T) {
	boom := errors.New("boom")
	release := make(chan struct{})
	r := New(func() (int, error) {
		<-release
		return 0, boom
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Join(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Join with an ended context: %v", err)
	}
	close(release)
	if _, err := r.Join(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("Join: %v, want the round's error", err)
	}
}
