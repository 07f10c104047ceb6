package node

import (
	"testing"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/enginetest"
)

func dropped(s *pushSub) bool {
	select {
	case <-s.gone:
		return true
	default:
		return false
	}
}

// TestPushHubDropsStreamsThatFallBehind: a stream is dropped once it lags
// by too many batches or bytes; the others keep theirs; a closed hub
// drops all and takes no new ones.
func TestPushHubDropsStreamsThatFallBehind(t *testing.T) {
	var h pushHub
	slow, _ := h.subscribe()
	fast, _ := h.subscribe()
	small := []*engine.Entry{enginetest.Sized(1, 10)}
	for range pushQueueMax {
		h.publish(small)
		<-fast.batches
		fast.queued.Add(-int64(len(small[0].Raw())))
	}
	if dropped(slow) || dropped(fast) {
		t.Fatal("dropped within the queue's limit")
	}
	h.publish(small)
	if !dropped(slow) || dropped(fast) {
		t.Fatalf("one batch past the limit: slow dropped %v, fast dropped %v", dropped(slow), dropped(fast))
	}

	big := []*engine.Entry{enginetest.Sized(2, 100)}
	heavy, _ := h.subscribe()
	heavy.queued.Add(pushQueueBytesMax - int64(len(big[0].Raw())) + 1)
	h.publish(big)
	if !dropped(heavy) {
		t.Fatal("a stream over the byte limit was kept")
	}

	h.close()
	if !dropped(fast) {
		t.Fatal("close kept a stream")
	}
	if _, ok := h.subscribe(); ok {
		t.Fatal("a closed hub took a stream")
	}
}
