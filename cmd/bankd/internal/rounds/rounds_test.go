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
// result of a round that began after it arrived, and concurrent callers
// share rounds.
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
	if n := started.Load(); n > callers*calls/5 {
		t.Fatalf("%d rounds for %d calls: concurrent callers did not share", n, callers*calls)
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
