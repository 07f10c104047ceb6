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
	newBase, newHash := index-1, below.PrevHash
	b := j.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(entryKey(0), entryKey(index), nil); err != nil {
		return fmt.Errorf("journal: trim below %d: %w", index, err)
	}
	if err := b.Set(baseKey, encodeBase(newBase, newHash), nil); err != nil {
		return fmt.Errorf("journal: trim below %d: %w", index, err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("journal: trim below %d: %w", index, err)
	}
	j.mu.Lock()
	j.base, j.baseHash = newBase, newHash
	j.mu.Unlock()
	return nil
}

// Reset empties the journal and sets its base to (index, hash), so that it
// continues at index+1. A node uses it after installing a peer's snapshot
// at index when its own journal cannot reach that far.
func (j *Journal) Reset(index uint64, hash engine.Hash) error {
	b := j.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(entryKey(0), []byte{entryPrefix + 1}, nil); err != nil {
		return fmt.Errorf("journal: reset to %d: %w", index, err)
	}
	if err := b.Set(baseKey, encodeBase(index, hash), nil); err != nil {
		return fmt.Errorf("journal: reset to %d: %w", index, err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("journal: reset to %d: %w", index, err)
	}
	j.mu.Lock()
	j.base, j.baseHash, j.last, j.lastHash = index, hash, index, hash
	j.mu.Unlock()
	return nil
}

// Replay applies the journal's entries above the engine's index, up to to
// (0 means Last), into e. progress, if not nil, is called after each entry.
// Reading and decoding run in their own goroutine, overlapping with apply.
func (j *Journal) Replay(e *engine.Engine, to uint64, progress func(index uint64)) error {
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
	applyErr := applyAll(e, ents, progress)
	close(stop)
	for range ents { // let the reader finish
	}
	if err := <-readErr; err != nil && !errors.Is(err, errReplayStopped) {
		return err
	}
	return applyErr
}

var errReplayStopped = errors.New("journal: replay stopped")

func applyAll(e *engine.Engine, ents <-chan *engine.Entry, progress func(uint64)) error {
	for ent := range ents {
		if _, err := e.Apply(ent); err != nil {
			return fmt.Errorf("journal: replay %d: %w", ent.Index, err)
		}
		if progress != nil {
			progress(ent.Index)
		}
	}
	return nil
}
