package engine

import "github.com/google/btree"

// lifecycle is the table behind holds and approvals: records that are
// open until a command closes them or their expiry passes, and stay
// remembered, closed, until keep more recent ones closed. The id-ordered
// tree is the state (a Capture clones it, lazily); the other two are
// indexes rebuilt from it on restore.
type lifecycle[T lived] struct {
	byID     *btree.BTreeG[T]
	expiring *btree.BTreeG[idAt] // open records by (expiry, id)
	closed   *btree.BTreeG[idAt] // closed records by (closing index, id)
	next     uint64              // id of the next record; ids start at 1
	open     int
	keep     int               // closed records remembered
	probe    func(id uint64) T // a record to look an id up with
	forgot   func(T)           // told of each closed record forgotten
}

// lived is what a lifecycle needs of its records.
type lived interface {
	id() uint64
	expiry() int64    // while open
	closedAt() uint64 // the entry that closed it; 0 while open
}

// idAt orders records by a time or an index, then id.
type idAt struct {
	at int64
	id uint64
}

func lessIDAt(a, b idAt) bool { return a.at < b.at || a.at == b.at && a.id < b.id }

func newLifecycle[T lived](keep int, probe func(uint64) T, forgot func(T)) lifecycle[T] {
	return lifecycle[T]{
		byID:     btree.NewG(32, func(a, b T) bool { return a.id() < b.id() }),
		expiring: btree.NewG(32, lessIDAt),
		closed:   btree.NewG(32, lessIDAt),
		next:     1, keep: keep, probe: probe, forgot: forgot,
	}
}

func (l *lifecycle[T]) get(id uint64) (T, bool) { return l.byID.Get(l.probe(id)) }

// known reports whether id was ever given out.
func (l *lifecycle[T]) known(id uint64) bool { return id != 0 && id < l.next }

// add files a record read from a state or just made.
func (l *lifecycle[T]) add(v T) {
	l.byID.ReplaceOrInsert(v)
	if v.closedAt() == 0 {
		l.expiring.ReplaceOrInsert(idAt{v.expiry(), v.id()})
		l.open++
		return
	}
	l.closed.ReplaceOrInsert(idAt{int64(v.closedAt()), v.id()})
	l.forgetOldest()
}

// close files closed, the record open was, and forgets the oldest closed
// records past keep.
func (l *lifecycle[T]) close(open, closed T) {
	l.expiring.Delete(idAt{open.expiry(), open.id()})
	l.open--
	l.byID.ReplaceOrInsert(closed)
	l.closed.ReplaceOrInsert(idAt{int64(closed.closedAt()), closed.id()})
	l.forgetOldest()
}

func (l *lifecycle[T]) forgetOldest() {
	for l.closed.Len() > l.keep {
		old, _ := l.closed.DeleteMin()
		v, _ := l.byID.Delete(l.probe(old.id))
		if l.forgot != nil {
			l.forgot(v)
		}
	}
}

// due returns the open record that expires first, if it expires by nowMs.
func (l *lifecycle[T]) due(nowMs int64) (T, bool) {
	first, ok := l.expiring.Min()
	if !ok || first.at > nowMs {
		var zero T
		return zero, false
	}
	return l.get(first.id)
}

// nextExpiry is the expiry of the open record due first.
func (l *lifecycle[T]) nextExpiry() (int64, bool) {
	first, ok := l.expiring.Min()
	return first.at, ok
}
