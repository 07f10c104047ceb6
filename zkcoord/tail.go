package zkcoord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkbank/zkbank/engine/entry"
)

// Tailer delivers the log's entries after a starting point, in index
// order, each exactly once, checking that each continues the chain.
type Tailer struct {
	l       *Log
	next    uint64
	prev    entry.Hash
	opts    TailOptions
	out     chan *entry.Envelope
	err     error
	watch   <-chan zk.Event // a pending exists-watch on entry watchAt
	watchAt uint64
	hintAt  time.Time // when a hint last arrived
}

// TailOptions tune a Tailer; zero values take the defaults.
type TailOptions struct {
	// Recheck is how often a tailer waiting for the next entry reads it
	// again, in case a watch was lost (default 1s).
	Recheck time.Duration
	// Hints are entries that the sender vouches ZooKeeper has committed,
	// every one before them too: the leader pushes each entry once its
	// append is confirmed. A hint that is the next entry and continues
	// the chain is delivered without asking ZooKeeper; one already
	// delivered is skipped; any other sends the tailer to ZooKeeper at
	// once. While hints arrive the tailer reads nothing and waits for them
	// even when a watch fires; HintQuiet after the last one it reads
	// ZooKeeper as usual, so lost or late hints only cost that delay.
	Hints     <-chan *entry.Envelope
	HintQuiet time.Duration // default 50ms
	// Hinted, if set, counts the entries delivered from Hints.
	Hinted *atomic.Uint64
}

// Tail starts reading the entries after `after` (index and hash of an entry
// the reader holds; zero values to start at index 1). It reads the next
// expected entry directly; when that entry does not exist yet it sets an
// exists-watch on it and also re-checks every recheck (default 1s), so that
// a lost watch or a reconnect never stalls it. The channel closes when ctx
// ends or on an error (see Err): ErrTrimmed (a snapshot is needed) or
// ErrDiverged (stop the replica).
func (l *Log) Tail(ctx context.Context, after Head, recheck time.Duration) *Tailer {
	return l.TailWith(ctx, after, TailOptions{Recheck: recheck})
}

// TailWith is Tail with hints and other options.
func (l *Log) TailWith(ctx context.Context, after Head, opts TailOptions) *Tailer {
	if opts.Recheck <= 0 {
		opts.Recheck = time.Second
	}
	if opts.HintQuiet <= 0 {
		opts.HintQuiet = 50 * time.Millisecond
	}
	t := &Tailer{l: l, next: after.Index + 1, prev: after.Hash, opts: opts, out: make(chan *entry.Envelope, 64)}
	go t.run(ctx)
	return t
}

// Entries is the stream of entries.
func (t *Tailer) Entries() <-chan *entry.Envelope { return t.out }

// Err is why the stream ended; read it after Entries is closed.
func (t *Tailer) Err() error { return t.err }

func (t *Tailer) run(ctx context.Context) {
	defer close(t.out)
	events := t.l.s.Subscribe()
	defer t.l.s.unsubscribe(events)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for ctx.Err() == nil {
		// Without a session a read waits in go-zookeeper's queue until the
		// next one (no request times out), and meanwhile no hint would be
		// taken: read only while connected; a session event wakes us.
		if !t.hinting() && t.l.s.Connected() {
			err := t.follow(ctx)
			if errors.Is(err, ErrTrimmed) || errors.Is(err, ErrDiverged) {
				t.err = err
				return
			}
		}
		timer.Reset(t.wait())
	waiting: // for a reason to look at ZooKeeper again
		for {
			select {
			case e := <-t.opts.Hints:
				if !t.takeHint(ctx, e) {
					t.hintAt = time.Time{} // a gap or a stranger: read ZooKeeper now
					break waiting
				}
				timer.Reset(t.wait())
			case <-t.watch:
				t.watch = nil
				if t.watchAt == t.next && !t.hinting() {
					break waiting
				}
			case <-events:
				t.watch, t.hintAt = nil, time.Time{} // a reconnect or expiry may have dropped the watch
				break waiting
			case <-timer.C:
				break waiting
			case <-ctx.Done():
				break waiting
			}
		}
	}
	t.err = ctx.Err()
}

// hinting reports whether a hint came recently: the next one is expected
// soon, so ZooKeeper is left alone.
func (t *Tailer) hinting() bool { return time.Since(t.hintAt) < t.opts.HintQuiet }

// wait is how long to wait before looking at ZooKeeper again.
func (t *Tailer) wait() time.Duration {
	if d := t.opts.HintQuiet - time.Since(t.hintAt); d > 0 {
		return d
	}
	return t.opts.Recheck
}

// takeHint delivers e if it is the next entry and continues the chain,
// and skips it if it was delivered already; false means: read ZooKeeper.
func (t *Tailer) takeHint(ctx context.Context, e *entry.Envelope) bool {
	if e.Index < t.next {
		t.hintAt = time.Now() // the pushes are live, only behind ZooKeeper
		return true
	}
	if e.Index != t.next || e.PrevHash != t.prev {
		return false
	}
	if t.opts.Hinted != nil { // before the entry is out: whoever takes it sees it counted
		t.opts.Hinted.Add(1)
	}
	if t.deliver(ctx, e) != nil {
		return false
	}
	t.hintAt = time.Now()
	return true
}

// follow delivers the entries from t.next on and leaves an exists-watch on
// the first one missing. It starts with a read, which also tells a trimmed
// entry from one not written yet. Per entry, a tailer that keeps up asks
// ZooKeeper twice: the exists-watch that finds nothing (and fires when the
// entry is created), and the read. Errors other than a trim or a
// divergence mean: look again later.
func (t *Tailer) follow(ctx context.Context) error {
	e, err := t.l.Read(t.next)
	switch {
	case err == nil:
		if err := t.deliver(ctx, e); err != nil {
			return err
		}
	case !errors.Is(err, ErrNotFound):
		return err
	case t.watch != nil && t.watchAt == t.next:
		return nil // still missing, and the watch on it is still set
	}
	for {
		exists, _, w, err := t.l.s.Conn.ExistsW(t.l.EntryPath(t.next))
		if err != nil {
			t.watch = nil
			return nil
		}
		if !exists {
			t.watch, t.watchAt = w, t.next
			return nil
		}
		if n, err := t.readAhead(ctx); err != nil || n == 0 {
			return err
		}
	}
}

// readAheadMax is how many entries the tailer reads at once when it is
// behind: one round trip per entry would cap it near 1,000 entries/s.
const readAheadMax = 64

// readAhead reads the entries from t.next on, in windows that double while
// every entry of a window exists (the tailer is behind) and end at the
// first missing one, and returns how many it delivered. Errors other than
// a divergence are left for the next read, which classifies them.
func (t *Tailer) readAhead(ctx context.Context) (int, error) {
	delivered := 0
	for w := 1; ; w = min(2*w, readAheadMax) {
		got, errs := make([]*entry.Envelope, w), make([]error, w)
		var wg sync.WaitGroup
		for i := range w {
			wg.Go(func() { got[i], errs[i] = t.l.get(t.next + uint64(i)) })
		}
		wg.Wait()
		for i, e := range got {
			if errs[i] != nil {
				if errors.Is(errs[i], ErrDiverged) {
					return delivered, errs[i]
				}
				return delivered, nil
			}
			if err := t.deliver(ctx, e); err != nil {
				return delivered, err
			}
			delivered++
		}
	}
}

func (t *Tailer) deliver(ctx context.Context, e *entry.Envelope) error {
	if e.PrevHash != t.prev {
		return fmt.Errorf("zkcoord: tail %d: %w: prev_hash %s, local chain has %s", e.Index, ErrDiverged, e.PrevHash, t.prev)
	}
	select {
	case t.out <- e:
	case <-ctx.Done():
		return ctx.Err()
	}
	t.next, t.prev = e.Index+1, e.Hash()
	return nil
}
