package journal

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/zkbank/zkbank/engine"
)

// TrimBelow deletes the entries below index, keeping index..last. Call it
// only below a verified snapshot: the journal is the audit trail, and by
// default nothing is trimmed.
func (j *Journal) TrimBelow(index uint64) error {
	base, last := j.position()
	if index <= base+1 {
		return nil
	}
	if index > last {
		return fmt.Errorf("journal: trim below %d: only %d entries held", index, last)
	}
	below, err := j.Get(index)
	if err != nil {
		return fmt.Errorf("journal: trim below %d: %w", index, err)
	}
	return j.rebase(entryKey(index), index-1, below.PrevHash, false)
}

// KeepingBytes is the lowest index from which the entries up to Last take
// at most bytes on disk, by Pebble's estimate (whole tables: it errs on
// keeping more). It is First when all of them fit.
func (j *Journal) KeepingBytes(bytes uint64) (uint64, error) {
	lo, last := j.First(), j.Last()
	end := entryKey(last + 1)
	fits := func(i uint64) (bool, error) {
		n, err := j.db.EstimateDiskUsage(entryKey(i), end)
		return n <= bytes, err
	}
	hi := last + 1 // fits(last+1): nothing kept takes nothing
	for lo < hi {  // the lowest i in [lo, hi] that fits
		mid := lo + (hi-lo)/2
		ok, err := fits(mid)
		if err != nil {
			return 0, fmt.Errorf("journal: size: %w", err)
		}
		if ok {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

// Reset empties the journal and sets its base to (index, hash), so that it
// continues at index+1. A node uses it after installing a peer's snapshot
// at index when its own journal cannot reach that far.
func (j *Journal) Reset(index uint64, hash engine.Hash) error {
	return j.rebase([]byte{entryPrefix + 1}, index, hash, true)
}

// rebase deletes the entries below end (a key) and records (base, hash) as
// the new base, in one synced batch. emptied says that every entry went, so
// the journal now ends at its base.
func (j *Journal) rebase(end []byte, base uint64, hash engine.Hash, emptied bool) error {
	b := j.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(entryKey(0), end, nil); err != nil {
		return fmt.Errorf("journal: rebase to %d: %w", base, err)
	}
	if err := b.Set(baseKey, encodeBase(base, hash), nil); err != nil {
		return fmt.Errorf("journal: rebase to %d: %w", base, err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("journal: rebase to %d: %w", base, err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.base, j.baseHash = base, hash
	if emptied {
		j.last, j.lastHash = base, hash
	}
	return nil
}

// Applier applies one entry to an engine: a node's key store
// (keystore.Store, which finds the records of keys older than the
// window), or its data dir (datadir.Dir, which also keeps its history).
type Applier interface {
	Apply(*engine.Engine, *engine.Entry) ([]engine.Result, error)
}

// Replay applies the journal's entries above the engine's index, up to to
// (0 means Last), into e, through apply. progress, if not nil, is called
// after each entry. Reading and decoding run in their own goroutine,
// overlapping with apply.
func (j *Journal) Replay(e *engine.Engine, apply Applier, to uint64, progress func(index uint64)) error {
	from := e.Index() + 1
	if base, _ := j.Base(); from <= base {
		return fmt.Errorf("journal: replay from %d: %w (journal starts at %d)", from, ErrNotFound, base+1)
	}
	ents := make(chan *engine.Entry, 64)
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		defer close(ents)
		readErr <- j.Iterate(from, to, func(ent *engine.Entry) error {
			select {
			case ents <- ent:
				return nil
			case <-stop:
				return errReplayStopped
			}
		})
	}()
	applyErr := applyAll(e, apply, ents, progress)
	close(stop)
	for range ents { // let the reader finish
	}
	if err := <-readErr; err != nil && !errors.Is(err, errReplayStopped) {
		return err
	}
	return applyErr
}

var errReplayStopped = errors.New("journal: replay stopped")

func applyAll(e *engine.Engine, apply Applier, ents <-chan *engine.Entry, progress func(uint64)) error {
	for ent := range ents {
		if _, err := apply.Apply(e, ent); err != nil {
			return fmt.Errorf("journal: replay %d: %w", ent.Index, err)
		}
		if progress != nil {
			progress(ent.Index)
		}
	}
	return nil
}
