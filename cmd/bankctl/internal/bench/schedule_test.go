package bench

import (
	"testing"
	"time"
)

// TestALateRequestIsMeasuredFromWhenItWasDue: a client that gets to its
// turn late is charged the wait (no coordinated omission), and turns are
// spaced by the rate.
func TestALateRequestIsMeasuredFromWhenItWasDue(t *testing.T) {
	before := time.Now()
	s := newSchedule(1000)
	after := time.Now()
	defer s.stop()
	time.Sleep(50 * time.Millisecond) // a stalled client
	first, second := s.next(), s.next()
	if first.Before(before) || first.After(after) {
		t.Fatalf("the first turn was due at %v, want the schedule's start (%v..%v), not when the client took it", first, before, after)
	}
	if gap := second.Sub(first); gap != time.Millisecond {
		t.Fatalf("turns %v apart, want 1ms at 1000/s", gap)
	}
}
