package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/zkcoord"
)

// journalBatchMax bounds how many entries share one journal sync.
const journalBatchMax = 256

// replicate is the replica loop: tail the log, write each batch of entries
// to the journal (synced) and then apply it. It returns nil when ctx ends
// and an error when the replica must stop (a diverged log, a failing disk):
// applying anything else would make this node disagree with the others.
func (n *Node) replicate(ctx context.Context) error {
	for {
		err := n.tailOnce(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, zkcoord.ErrTrimmed):
			n.cfg.Logger.Info("the log was trimmed past this node; installing a peer's snapshot", "applied", n.Applied())
			if err := n.catchUp(ctx); err != nil {
				n.cfg.Logger.Warn("snapshot install failed; retrying", "err", err)
				sleep(ctx, time.Second)
			}
		default:
			return fmt.Errorf("node: replica stopped at %d: %w", n.Applied(), err)
		}
	}
}

func (n *Node) tailOnce(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n.mu.RLock()
	from := zkcoord.Head{Index: n.eng.Index(), Hash: n.eng.LastHash()}
	n.mu.RUnlock()
	t := n.log.Tail(ctx, from, time.Second)
	for e := range t.Entries() {
		if err := n.persistAndApply(ctx, drain(e, t.Entries())); err != nil {
			return err
		}
	}
	return t.Err()
}

// drain takes first and whatever else is already waiting, so that one
// journal sync covers them all.
func drain(first *engine.Entry, ch <-chan *engine.Entry) []*engine.Entry {
	batch := []*engine.Entry{first}
	for len(batch) < journalBatchMax {
		select {
		case e, ok := <-ch:
			if !ok {
				return batch
			}
			batch = append(batch, e)
		default:
			return batch
		}
	}
	return batch
}

// persistAndApply makes the entries durable, then applies them and answers
// the requests waiting on them.
func (n *Node) persistAndApply(ctx context.Context, batch []*engine.Entry) error {
	if err := n.dir.Journal.Append(batch...); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.mu.Lock()
	for _, e := range batch {
		results, err := n.eng.Apply(e)
		if err != nil {
			n.mu.Unlock()
			return fmt.Errorf("node: apply %d: %w", e.Index, err)
		}
		n.waiters.resolve(e, results)
		if h := n.cfg.Hooks.EntryApplied; h != nil {
			h(e.Index, len(e.Commands))
		}
	}
	close(n.applied)
	n.applied = make(chan struct{})
	applied := n.eng.Index()
	n.mu.Unlock()
	n.mem.Update(applied, n.snapIndex.Load())
	if !n.ready.Load() && applied >= n.startHead {
		n.setReady()
	}
	n.maybeSnapshot(ctx, applied)
	return nil
}

// swapEngine replaces the engine after a snapshot install.
func (n *Node) swapEngine(e *engine.Engine) {
	n.mu.Lock()
	n.eng = e
	close(n.applied)
	n.applied = make(chan struct{})
	n.mu.Unlock()
	n.mem.Update(e.Index(), n.snapIndex.Load())
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}
