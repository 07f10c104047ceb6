package keystore

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// CollectBelow asks the store to forget the records no replay from the
// snapshot at index (the oldest the node keeps) or later can need: those
// first used more than RetainMs before that snapshot's time. Apply does
// the work a little at a time, so no entry waits for all of it.
func (s *Store) CollectBelow(index uint64) {
	for {
		cur := s.collect.Load()
		if index <= cur || s.collect.CompareAndSwap(cur, index) {
			return
		}
	}
}

// collector remembers, for one target, how far collection may go.
type collector struct {
	target   uint64
	cutoffMs int64 // records first used at or before it are forgotten
	done     bool  // nothing more to forget for this target
}

// collectSome forgets up to about budget records past the cutoff.
func (s *Store) collectSome(budget int) error {
	target := s.collect.Load()
	if target == 0 || s.retainMs == 0 {
		return nil
	}
	if target != s.collector.target {
		cutoff, ok, err := s.cutoffAt(target)
		if err != nil {
			return err
		}
		s.collector = collector{target: target, cutoffMs: cutoff, done: !ok}
	}
	if s.collector.done {
		return nil
	}
	done, err := s.forget(s.collector.cutoffMs, budget)
	s.collector.done = done
	return err
}

// cutoffAt is the newest first-use time a replay from index on cannot
// need: RetainMs before the time of the last spill at or below index (a
// time at or before the snapshot's own). ok is false when nothing was
// spilled at or below index.
func (s *Store) cutoffAt(index uint64) (int64, bool, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{spillPrefix}, UpperBound: spillKey(index+1, 0)})
	if err != nil {
		return 0, false, fmt.Errorf("keystore: collect: %w", err)
	}
	defer it.Close()
	if !it.Last() {
		return 0, false, it.Error()
	}
	sp, err := decodeSpill(it.Value())
	if err != nil {
		return 0, false, err
	}
	return sp.timeMs - s.retainMs, true, nil
}

// forget deletes the oldest spills whose records were all first used at
// or before cutoffMs, about budget records of them; done says it reached
// a spill that must stay (or the end).
func (s *Store) forget(cutoffMs int64, budget int) (done bool, err error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{spillPrefix}, UpperBound: []byte{spillPrefix + 1}})
	if err != nil {
		return false, fmt.Errorf("keystore: collect: %w", err)
	}
	defer it.Close()
	b := s.db.NewIndexedBatch()
	defer b.Close()
	done = true
	for ok := it.First(); ok; ok = it.Next() {
		if budget <= 0 {
			done = false
			break
		}
		sp, err := decodeSpill(it.Value())
		if err != nil {
			return false, err
		}
		if sp.newestMs > cutoffMs {
			break // spills are in first-use order, and so in time order
		}
		for _, ref := range sp.refs {
			if err := dropRecord(b, ref, cutoffMs); err != nil {
				return false, err
			}
		}
		if err := b.Delete(it.Key(), nil); err != nil {
			return false, fmt.Errorf("keystore: collect: %w", err)
		}
		budget -= max(1, len(sp.refs))
	}
	if err := it.Error(); err != nil {
		return false, fmt.Errorf("keystore: collect: %w", err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return false, fmt.Errorf("keystore: collect: %w", err)
	}
	return done, nil
}

// dropRecord removes ref's record from its key, and any other record of
// the key first used at or before cutoffMs.
func dropRecord(b *pebble.Batch, ref recordRef, cutoffMs int64) error {
	k := recordKey(ref.key)
	v, closer, err := b.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("keystore: collect: %w", err)
	}
	recs, err := decodeRecords(ref.key, v)
	closer.Close()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	kept := recs[:0]
	for _, r := range recs {
		if r.Index != ref.index && r.TimeMs > cutoffMs {
			kept = append(kept, r)
		}
	}
	if len(kept) == 0 {
		return b.Delete(k, nil)
	}
	out := make([]byte, 0, 48*len(kept))
	for i := range kept {
		out = encodeRecords(out, &kept[i])
	}
	return b.Set(k, out, nil)
}
