package bench

import (
	"testing"
	"time"
)

// TestALateRequestIsMeasuredFromWhenItWasDue: a client that gets to its
// turn late is charged the wait (no coordinated omission), and turns are
// spaced by the rate.
func TestALateRequestIsMeasuredFromWhenItWasDue(t *testing.T) {
	s := newSchedule(1000)
	defer s.stop()
	time.Sleep(50 * time.Millisecond) // a stalled client
	first, second := s.next(), s.next()
	if waited := time.Since(first); waited < 50*time.Millisecond {
		t.Fatalf("the first turn was due %v ago, want the 50 ms the client was late", waited)
	}
	if gap := second.Sub(first); gap != time.Millisecond {
		t.Fatalf("turns %v apart, want 1ms at 1000/s", gap)
	}
}
