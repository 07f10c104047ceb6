package node

import (
	"sort"
	"sync"
)

// logBytesWindow is how many of the newest entries logBytes remembers:
// 512 KiB of totals, more entries than the log keeps under the default
// limits.
const logBytesWindow = 1 << 16

// logBytes remembers the running total of the sizes of the entries this
// node applied, for the newest logBytesWindow of them. It lets a node
// snapshot after so many bytes of log and the leader bound in bytes what
// ZooKeeper keeps: a count of entries alone is no bound, since one entry
// is anything from a hundred bytes to half a megabyte.
type logBytes struct {
	mu    sync.Mutex
	total [logBytesWindow]uint64 // total[i%logBytesWindow]: bytes of entries first..i
	first uint64                 // oldest index recorded since the last gap (0: none)
	last  uint64                 // newest index recorded
}

// add records entry index of size bytes. Indexes come in order; a gap (a
// snapshot was installed) forgets what came before.
func (l *logBytes) add(index uint64, size int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sum := uint64(size)
	if l.first > 0 && index == l.last+1 {
		sum += l.total[l.last%logBytesWindow]
	} else {
		l.first = index
	}
	l.total[index%logBytesWindow] = sum
	l.last = index
}

// through is the running total through index, if remembered.
func (l *logBytes) through(index uint64) (uint64, bool) {
	switch {
	case l.first == 0 || index > l.last || index+1 < l.first:
		return 0, false
	case index+1 == l.first: // totals count from first
		return 0, true
	case l.last-index >= logBytesWindow: // overwritten
		return 0, false
	}
	return l.total[index%logBytesWindow], true
}

// between is the bytes of entries from+1..to, if both ends are
// remembered.
func (l *logBytes) between(from, to uint64) (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, okA := l.through(from)
	b, okB := l.through(to)
	return b - a, okA && okB && from <= to
}

// keepFrom is the lowest index from lowest on whose entries up to end-1
// add up to at most limit bytes (end when even end-1 alone is over). It
// reports false when the sizes are not remembered back to lowest.
func (l *logBytes) keepFrom(end, lowest, limit uint64) (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.keepFromLocked(end, lowest, limit)
}

// lagFloor is the lowest index whose entries through the newest add up to
// at most limit bytes; false when the sizes remembered do not reach that
// far back.
func (l *logBytes) lagFloor(limit uint64) (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.first == 0 {
		return 0, false
	}
	oldest := l.first
	if l.last >= logBytesWindow {
		oldest = max(oldest, l.last-logBytesWindow+2)
	}
	k, ok := l.keepFromLocked(l.last+1, oldest, limit)
	return k, ok && k > oldest
}

func (l *logBytes) keepFromLocked(end, lowest, limit uint64) (uint64, bool) {
	if end <= lowest {
		return end, true
	}
	top, okTop := l.through(end - 1)
	_, okLow := l.through(lowest - 1)
	if !okTop || !okLow {
		return 0, false
	}
	// entries k..end-1 shrink as k grows: the first k that fits
	k := lowest + uint64(sort.Search(int(end-lowest), func(i int) bool {
		below, _ := l.through(lowest + uint64(i) - 1)
		return top-below <= limit
	}))
	return k, true
}
