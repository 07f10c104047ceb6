package node

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
	"github.com/zkbank/zkbank/zkcoord"
)

// The leader pushes each entry to the followers as soon as ZooKeeper has
// confirmed its append and every one before it (through the Transport's
// Entries on the follower's side, and Node.Entries on the leader's), so
// that followers need not read it back: each read cost a ZooKeeper server about 300 µs of
// CPU here, and followers' reads were most of its requests
// (docs/benchmarks.md). A follower's tailer takes a pushed entry as a
// hint (zkcoord.TailOptions): delivered if it is the next one and
// continues the chain; whenever pushes stop, the tailer reads ZooKeeper as
// before. ZooKeeper stays the log: only entries it committed are pushed,
// and no confirmed entry whose predecessors are all confirmed is ever
// removed from it but by a trim.

// Limits of the push path.
const (
	pushQueueMax      = 256      // batches a stream may fall behind before the leader drops it
	pushQueueBytesMax = 16 << 20 // or bytes of entries
	hintQueueMax      = 64       // pushed entries a follower holds for its tailer
	pushRetryDelay    = 200 * time.Millisecond
	pushLeaderPoll    = 500 * time.Millisecond // how often a follower checks that it streams from the leader
)

// pushHub hands each confirmed batch to every follower's stream.
type pushHub struct {
	mu     sync.Mutex
	subs   map[*pushSub]struct{}
	closed bool
}

// pushSub is one follower's stream. It queues the entries' bytes, not the
// decoded entries, which are several times larger.
type pushSub struct {
	batches chan pushBatch
	queued  atomic.Int64  // bytes in batches
	gone    chan struct{} // closed when the hub drops the stream
}

// pushBatch is the bytes of the entries of one publish, and their sum.
type pushBatch struct {
	raws [][]byte
	size int64
}

func (h *pushHub) subscribe() (*pushSub, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false
	}
	if h.subs == nil {
		h.subs = map[*pushSub]struct{}{}
	}
	s := &pushSub{batches: make(chan pushBatch, pushQueueMax), gone: make(chan struct{})}
	h.subs[s] = struct{}{}
	return s, true
}

func (h *pushHub) drop(s *pushSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropLocked(s)
}

func (h *pushHub) dropLocked(s *pushSub) {
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.gone)
	}
}

// publish queues batch on every stream; a stream too far behind is
// dropped (its follower reads ZooKeeper and connects again).
func (h *pushHub) publish(entries []*engine.Entry) {
	batch := pushBatch{raws: make([][]byte, len(entries))}
	for i, e := range entries {
		batch.raws[i] = e.Raw()
		batch.size += int64(len(e.Raw()))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if s.queued.Add(batch.size) > pushQueueBytesMax {
			h.dropLocked(s)
			continue
		}
		select {
		case s.batches <- batch:
		default:
			h.dropLocked(s)
		}
	}
}

// close drops every stream and refuses new ones: the term is over or the
// node is stopping.
func (h *pushHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		h.dropLocked(s)
	}
}

// ErrStreamEnded: the leader dropped an entry stream (the follower fell
// too far behind, the term ended, or the node is stopping). The follower
// reads ZooKeeper and asks again.
var ErrStreamEnded = errors.New("node: entry stream ended")

// EntryStream is one follower's subscription to the entries this node's
// term confirms, from when it was opened.
type EntryStream struct {
	hub *pushHub
	sub *pushSub
}

// Entries opens a stream of the entries this node's term confirms from
// now on; it fails with ErrNotLeader on a node that does not lead.
func (n *Node) Entries() (*EntryStream, error) {
	ls := n.leading.Load()
	if ls == nil || n.stopping.Load() {
		return nil, ErrNotLeader
	}
	sub, ok := ls.push.subscribe()
	if !ok {
		return nil, ErrNotLeader
	}
	return &EntryStream{hub: &ls.push, sub: sub}, nil
}

// Next waits for the next batch of confirmed entries, as their bytes in
// the log, in order. It fails with ErrStreamEnded once the leader dropped
// the stream, or with ctx's error.
func (s *EntryStream) Next(ctx context.Context) ([][]byte, error) {
	select {
	case batch := <-s.sub.batches:
		s.sub.queued.Add(-batch.size)
		return batch.raws, nil
	case <-s.sub.gone:
		return nil, ErrStreamEnded
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close ends the subscription.
func (s *EntryStream) Close() { s.hub.drop(s.sub) }

// receivePushes keeps a stream from the leader open while this node
// follows, and queues what arrives for the tailer. Streams end with terms
// and leaders, so failures only mean: connect again shortly.
func (n *Node) receivePushes(ctx context.Context) {
	for ctx.Err() == nil {
		leader, ok := n.Leader()
		if ok && leader.ID != n.cfg.ID {
			err := n.readPushes(ctx, leader)
			n.cfg.Logger.Debug("entry stream from the leader ended; tailing ZooKeeper alone until it is back", "leader", leader.ID, "err", err)
		}
		sleep(ctx, pushRetryDelay)
	}
}

// readPushes reads one stream from leader until it ends or another node
// leads.
func (n *Node) readPushes(ctx context.Context, leader zkcoord.LeaderRecord) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go n.cancelOnLeaderChange(ctx, cancel, leader.ID)
	return n.cfg.Transport.Entries(ctx, leader.Addr, func(e *entry.Envelope) {
		select {
		case n.hints <- e:
		default: // the tailer is behind: it reads ZooKeeper anyway
		}
	})
}

func (n *Node) cancelOnLeaderChange(ctx context.Context, cancel context.CancelFunc, id string) {
	t := time.NewTicker(pushLeaderPoll)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if l, ok := n.Leader(); !ok || l.ID != id {
				cancel()
				return
			}
		case <-ctx.Done():
			return
		}
	}
}
