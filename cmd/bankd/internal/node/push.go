package node

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
	"github.com/zkbank/zkbank/zkcoord"
)

// The leader pushes each entry to the followers as soon as ZooKeeper has
// confirmed its append and every one before it, so that followers need
// not read it back: each read cost a ZooKeeper server about 300 µs of
// CPU here, and followers' reads were most of its requests
// (docs/benchmarks.md). A follower's tailer takes a pushed entry as a
// hint (zkcoord.TailOptions): delivered if it is the next one and
// continues the chain; whenever pushes stop, the tailer reads ZooKeeper as
// before. ZooKeeper stays the log: only entries it committed are pushed,
// and no confirmed entry whose predecessors are all confirmed is ever
// removed from it but by a trim.

// EntriesPath is where the leader streams its confirmed entries: frames
// of a 4-byte big-endian length and the entry as it is in the log.
const EntriesPath = "/internal/v1/entries"

// Limits of the push path.
const (
	pushQueueMax      = 256      // batches a stream may fall behind before the leader drops it
	pushQueueBytesMax = 16 << 20 // or bytes of entries
	pushWriteTimeout  = 10 * time.Second
	hintQueueMax      = 64 // pushed entries a follower holds for its tailer
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

// ServeEntries streams the entries this node's term confirms from now on,
// until the term ends, the node stops or the follower goes away. A node
// that does not lead answers 503.
func (n *Node) ServeEntries(w http.ResponseWriter, r *http.Request) {
	ls := n.leading.Load()
	var sub *pushSub
	ok := ls != nil && !n.stopping.Load()
	if ok {
		sub, ok = ls.push.subscribe()
	}
	if !ok {
		http.Error(w, "not the leader", http.StatusServiceUnavailable)
		return
	}
	defer ls.push.drop(sub)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for err := rc.Flush(); err == nil; err = rc.Flush() {
		select {
		case batch := <-sub.batches:
			sub.queued.Add(-batch.size)
			rc.SetWriteDeadline(time.Now().Add(pushWriteTimeout)) // a follower gone silent frees the handler
			if err := writeFrames(w, batch.raws); err != nil {
				return
			}
		case <-sub.gone:
			return
		case <-r.Context().Done():
			return
		}
	}
}

func writeFrames(w io.Writer, batch [][]byte) error {
	var size [4]byte
	for _, raw := range batch {
		binary.BigEndian.PutUint32(size[:], uint32(len(raw)))
		if _, err := w.Write(size[:]); err != nil {
			return err
		}
		if _, err := w.Write(raw); err != nil {
			return err
		}
	}
	return nil
}

// receivePushes keeps a stream from the leader open while this node
// follows, and queues what arrives for the tailer. Streams end with terms
// and leaders, so failures only mean: connect again shortly.
func (n *Node) receivePushes(ctx context.Context) {
	client := &http.Client{Transport: n.cfg.Client.Transport} // no timeout: the stream lasts a term
	for ctx.Err() == nil {
		leader, ok := n.Leader()
		if ok && leader.ID != n.cfg.ID {
			err := n.readPushes(ctx, client, leader)
			n.cfg.Logger.Debug("entry stream from the leader ended; tailing ZooKeeper alone until it is back", "leader", leader.ID, "err", err)
		}
		sleep(ctx, pushRetryDelay)
	}
}

// readPushes reads one stream from leader until it ends or another node
// leads.
func (n *Node) readPushes(ctx context.Context, client *http.Client, leader zkcoord.LeaderRecord) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go n.cancelOnLeaderChange(ctx, cancel, leader.ID)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(leader.Addr, "/")+EntriesPath, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("node: entry stream: HTTP %s", resp.Status)
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		e, err := readFrame(br)
		if err != nil {
			return err
		}
		select {
		case n.hints <- e:
		default: // the tailer is behind: it reads ZooKeeper anyway
		}
	}
}

func readFrame(r io.Reader) (*entry.Envelope, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > engine.EntryBytesMax {
		return nil, fmt.Errorf("node: entry stream: frame of %d bytes, limit %d", n, engine.EntryBytesMax)
	}
	raw := make([]byte, n)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, err
	}
	return entry.Decode(raw)
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
