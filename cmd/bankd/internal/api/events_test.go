package api

import (
	"testing"
	"time"
)

func TestALimiterGivesEachKeyItsRate(t *testing.T) {
	l := newLimiter(10)
	now := time.Now()
	l.now = func() time.Time { return now }
	for i := range 10 {
		if !l.allow("a") {
			t.Fatalf("request %d of a burst of 10 refused", i)
		}
	}
	if l.allow("a") {
		t.Fatal("the 11th request of a burst of 10 allowed")
	}
	if !l.allow("b") {
		t.Fatal("one key's burst refused another's")
	}
	now = now.Add(150 * time.Millisecond) // refills 1.5 tokens at 10 a second
	if !l.allow("a") || l.allow("a") {
		t.Fatal("not one token after a refill of 1.5")
	}
	if off := newLimiter(0); !off.allow("a") {
		t.Fatal("a zero rate refused")
	}
}

func TestALimiterForgetsFullBucketsPastItsBound(t *testing.T) {
	l := newLimiter(1000)
	now := time.Now()
	l.now = func() time.Time { return now }
	for i := range limiterKeysMax {
		l.allow(string(rune(i)))
	}
	now = now.Add(time.Second) // every bucket full again
	for i := range 10 {
		l.allow(string(rune(limiterKeysMax + i)))
	}
	if len(l.buckets) > limiterKeysMax {
		t.Fatalf("%d buckets kept, bound %d", len(l.buckets), limiterKeysMax)
	}
}
