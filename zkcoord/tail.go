package zkcoord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkbank/zkbank/engine"
)

// Tailer delivers the log's entries after a starting point, in index
// order, each exactly once, checking that each continues the chain.
type Tailer struct {
	l       *Log
	next    uint64
	prev    engine.Hash
	recheck time.Duration
	out     chan *engine.Entry
	err     error
}

// Tail starts reading the entries after `after` (index and hash of an entry
// the reader holds; zero values to start at index 1). It reads the next
// expected entry directly; when that entry does not exist yet it sets an
// exists-watch on it and also re-checks every recheck (default 1s), so that
// a lost watch or a reconnect never stalls it. The channel closes when ctx
// ends or on an error (see Err): ErrTrimmed (a snapshot is needed) or
// ErrDiverged (stop the replica).
func (l *Log) Tail(ctx context.Context, after Head, recheck time.Duration) *Tailer {
	if recheck <= 0 {
		recheck = time.Second
	}
	t := &Tailer{l: l, next: after.Index + 1, prev: after.Hash, recheck: recheck, out: make(chan *engine.Entry, 64)}
	go t.run(ctx)
	return t
}

// Entries is the stream of entries.
func (t *Tailer) Entries() <-chan *engine.Entry { return t.out }

// Err is why the stream ended; read it after Entries is closed.
func (t *Tailer) Err() error { return t.err }

func (t *Tailer) run(ctx context.Context) {
	defer close(t.out)
	events := t.l.s.Subscribe()
	defer t.l.s.unsubscribe(events)
	var watch <-chan zk.Event // exists-watch on entry t.next, if set
	missing := false          // a read just found no entry t.next: watch it at once
	for ctx.Err() == nil {
		err := ErrNotFound
		if !missing {
			err = t.readFrom(ctx)
		}
		switch {
		case err == nil:
			watch, missing = nil, true
			continue
		case errors.Is(err, ErrTrimmed), errors.Is(err, ErrDiverged):
			t.err = err
			return
		case errors.Is(err, ErrNotFound):
			var appeared bool
			if watch, appeared = t.watchNext(watch); appeared {
				missing = false
				continue
			}
		}
		select { // not there yet, or ZooKeeper unreachable: wait for a reason to look again
		case <-watch:
			watch = nil
		case <-events:
			watch = nil // a reconnect or expiry may have dropped the watch
		case <-time.After(t.recheck):
		case <-ctx.Done():
		}
		missing = false
	}
	t.err = ctx.Err()
}

// readFrom reads entry t.next, which also tells whether it was trimmed,
// delivers it and reads ahead. It returns nil once a read ahead found no
// next entry (so the caller can watch for it without reading it again),
// and ErrNotFound when entry t.next itself is missing. Per entry, a tailer
// that keeps up asks ZooKeeper three times: the read, the read of the next
// that finds nothing, and the exists-watch on it.
func (t *Tailer) readFrom(ctx context.Context) error {
	e, err := t.l.Read(t.next)
	if err != nil {
		return err
	}
	if err := t.deliver(ctx, e); err != nil {
		return err
	}
	return t.readAhead(ctx)
}

// watchNext sets an exists-watch on the next entry unless one is set, and
// reports whether the entry appeared meanwhile.
func (t *Tailer) watchNext(watch <-chan zk.Event) (<-chan zk.Event, bool) {
	if watch != nil {
		return watch, false
	}
	exists, _, w, err := t.l.s.Conn.ExistsW(t.l.EntryPath(t.next))
	if err != nil {
		return nil, false // read again after the recheck
	}
	return w, exists
}

// readAheadMax is how many entries the tailer reads at once when it is
// behind: one round trip per entry would cap it near 1,000 entries/s.
const readAheadMax = 64

// readAhead reads the entries after the one just delivered, in windows
// that double while every entry of a window exists (the tailer is behind)
// and end at the first missing one. Errors other than a divergence are
// left for the next single read, which classifies them.
func (t *Tailer) readAhead(ctx context.Context) error {
	for w := 1; ; w = min(2*w, readAheadMax) {
		got, errs := make([]*engine.Entry, w), make([]error, w)
		var wg sync.WaitGroup
		for i := range w {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i], errs[i] = t.l.get(t.next + uint64(i))
			}()
		}
		wg.Wait()
		for i, e := range got {
			if errs[i] != nil {
				if errors.Is(errs[i], ErrDiverged) {
					return errs[i]
				}
				return nil
			}
			if err := t.deliver(ctx, e); err != nil {
				return err
			}
		}
	}
}

func (t *Tailer) deliver(ctx context.Context, e *engine.Entry) error {
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
