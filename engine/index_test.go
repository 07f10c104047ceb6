package engine

import (
	"testing"

	"pgregory.net/rapid"
)

// TestPropertyHashIndexMatchesMap runs random inserts and removes through
// a hashIndex and a Go map side by side. Hashes come from a space of eight
// values (and the index starts at its smallest size), so equal hashes,
// long probe runs, runs that wrap around the end of the table, growth and
// the backward shift of deletion are all common.
func TestPropertyHashIndexMatchesMap(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		x := newHashIndex(0)
		model := map[uint32]uint32{} // value -> hash
		next := uint32(0)
		for _, op := range rapid.SliceOfN(rapid.IntRange(0, 9), 1, 300).Draw(t, "ops") {
			if op < 6 || len(model) == 0 { // insert
				h := uint32(op) * 0x40000001 // spread over the top and bottom bits
				x.insert(h, next)
				model[next] = h
				next++
			} else { // remove one, chosen by the draw
				v := rapid.SampledFrom(sortedValues(model)).Draw(t, "remove")
				x.remove(model[v], v)
				delete(model, v)
			}
			checkIndex(t, &x, model)
		}
	})
}

func sortedValues(m map[uint32]uint32) []uint32 {
	out := make([]uint32, 0, len(m))
	for v := uint32(0); len(out) < len(m); v++ {
		if _, ok := m[v]; ok {
			out = append(out, v)
		}
	}
	return out
}

func checkIndex(t *rapid.T, x *hashIndex, model map[uint32]uint32) {
	if x.len() != len(model) {
		t.Fatalf("index holds %d entries, model %d", x.len(), len(model))
	}
	for v, h := range model {
		if got, ok := x.find(h, func(c uint32) bool { return c == v }); !ok || got != v {
			t.Fatalf("value %d (hash %#x) not found: %d %v", v, h, got, ok)
		}
	}
	if _, ok := x.find(0x12345, func(uint32) bool { return true }); ok {
		t.Fatal("found an entry for a hash never inserted")
	}
}

// TestHashIndexRemoveAbsent leaves the index unchanged.
func TestHashIndexRemoveAbsent(t *testing.T) {
	x := newHashIndex(0)
	x.insert(7, 1)
	x.remove(7, 2)
	x.remove(8, 1)
	if _, ok := x.find(7, func(v uint32) bool { return v == 1 }); !ok || x.len() != 1 {
		t.Fatalf("remove of an absent entry changed the index: len %d", x.len())
	}
}
