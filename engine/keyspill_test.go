package engine

import (
	"bytes"
	"testing"
)

func retainEngine(t *testing.T, retainMs int64) *Engine {
	t.Helper()
	e, err := New(Config{KeyWindowEntries: 2, KeyWindowMax: 100, KeyRetainMs: retainMs, ClosedHoldsKept: 10})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestKeysOutliveTheWindowByTime: a key that left the in-memory window is
// answered from the node's store for KeyRetainMs of the log's time, and
// applied anew after; a node that restarts from an older snapshot and
// replays, its store holding records of entries it has not applied yet,
// ends with the same state; without the store, the retry applies twice.
func TestKeysOutliveTheWindowByTime(t *testing.T) {
	e := retainEngine(t, 1_000)
	s := store{}
	s.apply(t, e, nextEntryAt(t, e, BodyV6, 1, create("A", "Ada", 100)))
	snap := stateBytes(t, e)
	var entries []*Entry
	next := func(timeMs int64, cmds ...Command) []Result {
		ent := nextEntryAt(t, e, BodyV6, timeMs, cmds...)
		entries = append(entries, ent)
		return s.apply(t, e, ent)
	}
	dep := deposit("A", 5)
	next(10, dep)
	next(20)
	next(30) // dep's key leaves the window: the store has it
	if _, ok := s[dep.Key]; !ok {
		t.Fatalf("the deposit's key was not spilled: %+v", s)
	}
	bare, err := Restore(e.Config(), bytes.NewReader(stateBytes(t, e)))
	if err != nil {
		t.Fatal(err)
	}
	if r := next(500, dep)[0]; !r.Replayed || r.Accounts()[0].Balance != 105 {
		t.Fatalf("a retry 490 ms later: %+v", r)
	}
	if r := mustApply(t, bare, nextEntryAt(t, bare, BodyV6, 500, dep))[0]; r.Replayed || r.Accounts()[0].Balance != 110 {
		t.Fatalf("without the store the retry should apply again (which the store prevents): %+v", r)
	}
	if r := next(1_010, dep)[0]; r.Replayed || r.Accounts()[0].Balance != 110 {
		t.Fatalf("a retry past KeyRetainMs: %+v, want applied anew", r)
	}
	restarted, err := Restore(e.Config(), bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range entries { // the store already holds what these entries spill
		s.apply(t, restarted, ent)
	}
	if restarted.StateHash() != e.StateHash() {
		t.Fatal("a node that replayed from an older snapshot, its store ahead of it, ended elsewhere")
	}
}

// TestKeyRecordsRefuseDamage: a record a store gives back decodes to what
// was spilled, and damage is an error, never a panic.
func TestKeyRecordsRefuseDamage(t *testing.T) {
	r := KeyRecord{Key: "ctb1\x00k", Number: "0000000001", Index: 7, TimeMs: -3, Fingerprint: 1 << 60, Code: CodeOK, Balances: [2]uint64{5, 6}}
	v := r.MarshalValue()
	if back, err := UnmarshalKeyRecord(r.Key, v); err != nil || back != r {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	for n := 0; n < len(v)-len(r.Number); n++ {
		if _, err := UnmarshalKeyRecord(r.Key, v[:n]); err == nil {
			t.Fatalf("a record cut to %d bytes decoded", n)
		}
	}
	for _, key := range []string{"", "a\x00", "k e y"} {
		if _, err := UnmarshalKeyRecord(key, v); err == nil {
			t.Fatalf("a record under key %q decoded", key)
		}
	}
}

// FuzzKeyRecord: whatever bytes a store gives back, decoding never
// panics, and what decodes encodes to bytes that decode to the same.
func FuzzKeyRecord(f *testing.F) {
	r := KeyRecord{Key: "k", Number: "A", Index: 1, Code: CodeOK}
	f.Add("k", r.MarshalValue())
	f.Fuzz(func(t *testing.T, key string, v []byte) {
		r, err := UnmarshalKeyRecord(key, v)
		if err != nil {
			return
		}
		if back, err := UnmarshalKeyRecord(key, r.MarshalValue()); err != nil || back != r {
			t.Fatalf("%x decoded to %+v, which encodes to %+v (%v)", v, r, back, err)
		}
	})
}

// TestKeysSaysWhatTheWindowHolds: the span names the oldest key held, its
// time from version 5, and every key first used after it answers as a
// retry.
func TestKeysSaysWhatTheWindowHolds(t *testing.T) {
	e := retainEngine(t, 0)
	if k := e.Keys(); k.Held != 0 || k.OldestIndex != 0 || k.WindowEntries != 2 || k.WindowMax != 100 {
		t.Fatalf("an empty window: %+v", k)
	}
	var cmds []Command
	applyV5(t, e, 5, create("A", "Ada", 100))
	for i, at := range []int64{10, 20, 30} {
		c := deposit("A", uint64(i+1))
		cmds = append(cmds, c)
		applyV5(t, e, at, c)
	}
	k := e.Keys()
	if k.OldestIndex != e.Index()-1 || k.OldestTimeMs != 20 || k.Held != 2 {
		t.Fatalf("after four entries with a window of two: %+v (index %d)", k, e.Index())
	}
	for _, c := range cmds[1:] {
		if r := applyV5(t, e, 30, c)[0]; !r.Replayed {
			t.Fatalf("a key first used after index %d was forgotten: %+v", k.OldestIndex-1, r)
		}
	}
}
