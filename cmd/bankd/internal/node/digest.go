package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrIndexPassed: a digest was asked for at an index this node applied
// already; it holds only its current state.
var ErrIndexPassed = errors.New("node: index already passed")

// digestWaiters are the digests asked for at indexes not applied yet; the
// replica loop answers them right after applying each of those entries.
type digestWaiters struct {
	mu sync.Mutex
	m  map[uint64][]chan Digest
}

func (d *digestWaiters) add(index uint64) chan Digest {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[uint64][]chan Digest{}
	}
	ch := make(chan Digest, 1)
	d.m[index] = append(d.m[index], ch)
	return ch
}

func (d *digestWaiters) take(index uint64) []chan Digest {
	d.mu.Lock()
	defer d.mu.Unlock()
	chs := d.m[index]
	delete(d.m, index)
	return chs
}

// DigestAt is the state digest at exactly index, so that nodes can be
// compared at one point of the log while it moves: at once if this node
// is there, else when its replica loop applies that entry (which then
// hashes the whole state before going on: milliseconds for thousands of
// accounts, a few hundred for a million), or ErrIndexPassed.
func (n *Node) DigestAt(ctx context.Context, index uint64) (Digest, error) {
	n.mu.RLock()
	at := n.eng.Index()
	if at == index {
		defer n.mu.RUnlock()
		return Digest{Index: at, StateHash: n.eng.StateHash(), Totals: n.eng.Totals()}, nil
	}
	var ch chan Digest
	if at < index {
		ch = n.digests.add(index) // under the read lock: the loop cannot apply index meanwhile
	}
	n.mu.RUnlock()
	if ch == nil {
		return Digest{}, fmt.Errorf("%w: asked for %d, applied %d", ErrIndexPassed, index, at)
	}
	select {
	case d := <-ch:
		return d, nil
	case <-n.done:
		return Digest{}, ErrStopped
	case <-ctx.Done():
		return Digest{}, fmt.Errorf("node: digest at %d: %w", index, ctx.Err())
	}
}

// answerDigests answers the digests asked for at the index just applied.
// It runs under the write lock.
func (n *Node) answerDigests(index uint64) {
	chs := n.digests.take(index)
	if len(chs) == 0 {
		return
	}
	d := Digest{Index: index, StateHash: n.eng.StateHash(), Totals: n.eng.Totals()}
	for _, ch := range chs {
		ch <- d
	}
}
