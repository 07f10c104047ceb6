package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
	"github.com/zkbank/zkbank/seal"
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
		var err error
		if ls := n.ownTerm(); ls != nil {
			err = n.applyOwn(ctx, ls)
		} else {
			err = n.tailOnce(ctx)
		}
		if errors.Is(err, zkcoord.ErrDiverged) {
			err = n.judgeDiverged(err)
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil, errors.Is(err, errSwitch), errors.Is(err, errRetail):
			continue
		case errors.Is(err, seal.ErrUnverified), errors.Is(err, engine.ErrMalformedEntry):
			n.stall(ctx, err)
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
	t := n.log.TailWith(ctx, from, zkcoord.TailOptions{Hints: n.hints, Hinted: &n.hinted})
	for {
		select {
		case e, ok := <-t.Entries():
			if !ok {
				return t.Err()
			}
			batch, err := n.open(drain(e, t.Entries()))
			if len(batch) > 0 {
				if err := n.persistAndApply(batch); err != nil {
					return err
				}
			}
			if err != nil {
				return err
			}
		case <-n.leadStarted:
		}
		if n.ownTerm() != nil {
			return errSwitch
		}
	}
}

// errSwitch: the node leads and has applied the log as it was when the
// term began; from now on it applies its own appends.
var errSwitch = errors.New("node: switch to the leader's own appends")

// ownTerm is the term this node leads, once it applied everything before
// it.
func (n *Node) ownTerm() *leaderState {
	ls := n.leading.Load()
	if ls == nil || ls.term.Err() != nil || n.Applied() < ls.startHead {
		return nil
	}
	return ls
}

// applyOwn applies the leader's own entries as their appends succeed,
// until the term ends or an append fails; then the tailer takes over from
// what was applied, reading whatever else landed.
func (n *Node) applyOwn(ctx context.Context, ls *leaderState) error {
	var next ownAppend // taken from the feed, not yet landed
	for {
		p := next
		if p.Pending == nil {
			select {
			case p = <-ls.feed:
			case <-ls.term.Done():
				return nil
			case <-ctx.Done():
				return nil
			}
		}
		batch, waiting, more := n.collectOwn(ctx, p, ls.feed)
		next = waiting
		if len(batch) > 0 {
			ls.push.publish(batch) // before the journal: ZooKeeper holds them already
			if err := n.persistAndApply(batch); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
	}
}

// collectOwn waits for p's append and takes the entries of the appends
// behind it that have landed too (takeLanded), skipping those the tailer
// applied before the switch; next is the first append still in flight.
// more is false once an append failed.
func (n *Node) collectOwn(ctx context.Context, p ownAppend, feed <-chan ownAppend) (batch []*engine.Entry, next ownAppend, more bool) {
	landed, next, ok := takeLanded(ctx, p, feed, journalBatchMax)
	base := n.Applied()
	for _, l := range landed {
		if l.Entry.Index > base {
			batch = append(batch, l.entry())
		}
	}
	return batch, next, ok
}

// landing is an append in flight (a *zkcoord.Pending).
type landing interface {
	Done() <-chan struct{}
	Err() error
}

// takeLanded waits for first to land, then takes from feed, in order, the
// appends that have landed as well (up to limit), so that one journal sync
// covers them all. The first one still in flight is returned as next
// rather than waited for: under load the batcher always has another
// append in flight, and waiting for it would hold back the entries
// already confirmed. ok is false when an append failed (those before it
// are returned) or ctx ended.
func takeLanded[P landing](ctx context.Context, first P, feed <-chan P, limit int) (landed []P, next P, ok bool) {
	select {
	case <-first.Done():
	case <-ctx.Done():
		return nil, next, false
	}
	for p := first; ; {
		if p.Err() != nil {
			return landed, next, false
		}
		landed = append(landed, p)
		if len(landed) >= limit {
			return landed, next, true
		}
		select {
		case p = <-feed:
		default:
			return landed, next, true
		}
		select {
		case <-p.Done():
		default:
			return landed, p, true
		}
	}
}

// drain takes first and whatever else is already waiting, so that one
// journal sync covers them all.
func drain(first *entry.Envelope, ch <-chan *entry.Envelope) []*entry.Envelope {
	batch := []*entry.Envelope{first}
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
func (n *Node) persistAndApply(batch []*engine.Entry) error {
	started := time.Now()
	if err := n.dir.Journal.Append(batch...); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.cfg.Hooks.stage(StageJournalSync, started)
	for _, e := range batch {
		if err := n.applyEntry(e); err != nil {
			return err
		}
	}
	if err := n.checkOwnCertificate(); err != nil {
		return n.leaveRevoked(err)
	}
	n.mu.Lock()
	close(n.applied)
	n.applied = make(chan struct{})
	applied := n.eng.Index()
	n.mu.Unlock()
	n.mem.Update(applied, n.snapIndex.Load())
	n.unstall()
	if !n.ready.Load() && applied >= n.startHead {
		n.setReady()
	}
	n.maybeSnapshot(applied)
	return errors.Join(n.trimJournal(applied), n.trimHistory(applied))
}

// applyEntry applies one entry under the write lock (held per entry, so
// reads wait for at most one entry, not a whole journal batch), through
// the key store and into the history, and answers the requests waiting
// on it.
func (n *Node) applyEntry(e *engine.Entry) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	results, err := n.dir.Apply(n.eng, e)
	if err != nil {
		return fmt.Errorf("node: apply %d: %w", e.Index, err)
	}
	n.logBytes.add(e.Index, len(e.Raw()))
	n.answerDigests(e.Index)
	n.waiters.resolve(e, results)
	if h := n.cfg.Hooks.EntryApplied; h != nil {
		h(e.Index, len(e.Commands))
	}
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
