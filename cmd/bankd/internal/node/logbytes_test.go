package node

import (
	"testing"

	"pgregory.net/rapid"
)

// sizesModel is what logBytes must agree with: every size since the last
// gap, summed the slow way.
type sizesModel struct {
	first uint64
	sizes []uint64 // sizes[i]: entry first+i
}

func (m *sizesModel) bytes(from, to uint64) uint64 { // entries from..to
	var sum uint64
	for i := from; i <= to; i++ {
		sum += m.sizes[i-m.first]
	}
	return sum
}

func (m *sizesModel) last() uint64 { return m.first + uint64(len(m.sizes)) - 1 }

// TestLogBytesAgreesWithSums: through gaps and more entries than the
// window holds, every answer logBytes gives matches the sums, and it
// declines to answer only about what it cannot remember.
func TestLogBytesAgreesWithSums(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var l logBytes
		m := &sizesModel{}
		next := rapid.Uint64Range(1, 1<<40).Draw(t, "start")
		for range rapid.IntRange(1, 6).Draw(t, "runs") {
			if rapid.Bool().Draw(t, "gap") || m.first == 0 {
				next += rapid.Uint64Range(1, 1000).Draw(t, "skip")
				m = &sizesModel{first: next}
			}
			count := rapid.SampledFrom([]int{1, 2, 3, 17, logBytesWindow - 2, logBytesWindow, logBytesWindow + 1, 3 * logBytesWindow / 2}).Draw(t, "count")
			small := rapid.Uint64Range(1, 600_000).Draw(t, "size")
			for i := range count {
				size := small + uint64(i%7)*1000
				l.add(next, int(size))
				m.sizes = append(m.sizes, size)
				next++
			}
		}
		last, remembered := m.last(), min(uint64(len(m.sizes)), logBytesWindow-1)
		oldest := last - remembered + 1

		from := rapid.Uint64Range(oldest-1, last).Draw(t, "from")
		to := rapid.Uint64Range(from, last).Draw(t, "to")
		if got, ok := l.between(from, to); !ok || got != m.bytes(from+1, to) {
			t.Fatalf("between(%d, %d) = %d, %v; want %d", from, to, got, ok, m.bytes(from+1, to))
		}
		if _, ok := l.between(m.first-2, last); ok {
			t.Fatalf("between reaches before the gap at %d", m.first)
		}
		for from := max(m.first, last-logBytesWindow-1) - 1; from < oldest; from++ {
			if got, ok := l.between(from, last); ok && got != m.bytes(from+1, last) {
				t.Fatalf("between(%d, %d) = %d from an overwritten total; want %d", from, last, got, m.bytes(from+1, last))
			}
		}

		end := rapid.Uint64Range(oldest, last+1).Draw(t, "end")
		lowest := rapid.Uint64Range(oldest, end).Draw(t, "lowest")
		limit := rapid.Uint64Range(0, 1<<34).Draw(t, "limit")
		k, ok := l.keepFrom(end, lowest, limit)
		if !ok || k < lowest || k > end {
			t.Fatalf("keepFrom(%d, %d, %d) = %d, %v", end, lowest, limit, k, ok)
		}
		if k < end && m.bytes(k, end-1) > limit {
			t.Fatalf("keepFrom kept %d..%d: %d bytes over %d", k, end-1, m.bytes(k, end-1), limit)
		}
		if k > lowest && m.bytes(k-1, end-1) <= limit {
			t.Fatalf("keepFrom(%d, %d, %d) = %d: %d would fit too", end, lowest, limit, k, k-1)
		}

		floor, ok := l.lagFloor(limit)
		if ok && (m.bytes(floor, last) > limit || m.bytes(floor-1, last) <= limit) {
			t.Fatalf("lagFloor(%d) = %d: not the lowest index whose entries fit", limit, floor)
		}
		if !ok && m.bytes(oldest, last) > limit {
			t.Fatalf("lagFloor(%d) declined though the window holds more than the limit", limit)
		}
	})
}
