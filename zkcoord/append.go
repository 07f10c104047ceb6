package zkcoord

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/go-zookeeper/zk"

	"github.com/zkbank/zkbank/engine/entry"
)

// Appender appends entries for one term: it numbers and chains them, and
// keeps up to maxInflight fenced appends in flight at once. After the first
// failure every later append fails too and the term ends: a leader never
// retries blindly.
type Appender struct {
	l    *Log
	term *Term
	sem  chan struct{}

	mu       sync.Mutex
	next     uint64
	prevHash entry.Hash
	seg      uint64 // highest segment known to exist, plus one (0: none)
	failed   error
	sealer   Sealer
}

// Sealer seals each envelope before it is encoded (package seal): the
// Appender stays ignorant of keys and signatures.
type Sealer interface {
	Seal(e *entry.Envelope) error
}

// SealWith makes the appender seal every entry with s; call it before the
// first Append.
func (a *Appender) SealWith(s Sealer) {
	a.mu.Lock()
	a.sealer = s
	a.mu.Unlock()
}

// Pending is one append in flight.
type Pending struct {
	Entry *entry.Envelope
	done  chan struct{}
	err   error
}

// Done is closed when the append has an outcome.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Err is the outcome once Done is closed: nil when the entry is in the
// log; ErrFenced or ErrLeadershipLost when it surely is not; ErrAmbiguous
// when it may be.
func (p *Pending) Err() error { return p.err }

// NewAppender starts appending after head, which must be the end of the log
// as Recover returned it inside term.
func (l *Log) NewAppender(term *Term, head Head, maxInflight int) *Appender {
	return &Appender{l: l, term: term, sem: make(chan struct{}, max(maxInflight, 1)), next: head.Index + 1, prevHash: head.Hash}
}

// Next is the index the next Append will use.
func (a *Appender) Next() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.next
}

// Append builds the next entry around a body of the given version and
// starts appending it. It blocks while maxInflight appends are in flight,
// and fails at once if an earlier append failed or the term is over. Call
// it from one goroutine: entries are numbered in call order.
func (a *Appender) Append(ctx context.Context, bodyVersion uint32, body []byte, timeMs int64) (*Pending, error) {
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-a.term.Done():
		return nil, a.term.Err()
	}
	p, err := a.start(bodyVersion, body, timeMs)
	if err != nil {
		<-a.sem
		return nil, err
	}
	go a.send(p)
	return p, nil
}

func (a *Appender) start(bodyVersion uint32, body []byte, timeMs int64) (*Pending, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failed != nil {
		return nil, a.failed
	}
	if err := a.term.Err(); err != nil {
		return nil, err
	}
	e := &entry.Envelope{Index: a.next, Epoch: a.term.Epoch, PrevHash: a.prevHash, TimeMs: timeMs, BodyVersion: bodyVersion, Body: body}
	if a.sealer != nil {
		if err := a.sealer.Seal(e); err != nil {
			return nil, fmt.Errorf("zkcoord: append %d: %w", a.next, err)
		}
	}
	if _, err := entry.Encode(e); err != nil {
		return nil, fmt.Errorf("zkcoord: append %d: %w", a.next, err)
	}
	if err := a.ensureSegment(a.l.segment(e.Index)); err != nil {
		a.fail(err)
		return nil, err
	}
	a.next, a.prevHash = e.Index+1, e.Hash()
	return &Pending{Entry: e, done: make(chan struct{})}, nil
}

// ensureSegment creates the segment znode before its first entry is
// appended (in-flight appends to it would fail otherwise).
func (a *Appender) ensureSegment(seg uint64) error {
	if seg+1 <= a.seg {
		return nil
	}
	_, err := a.l.s.Conn.Create(a.l.segmentPath(seg), nil, 0, a.l.s.acl)
	if err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return fmt.Errorf("zkcoord: create segment %d: %w: %w", seg, ErrAmbiguous, err)
	}
	a.seg = seg + 1
	return nil
}

// send runs the fenced create: Multi(Check(epoch, term version),
// Create(entry)). The create is also a compare-and-set: the znode is named
// by the index, so no index is ever written twice.
func (a *Appender) send(p *Pending) {
	defer func() { <-a.sem }()
	res, err := a.l.s.Conn.Multi(
		&zk.CheckVersionRequest{Path: a.l.s.Path("epoch"), Version: a.term.epochVersion},
		&zk.CreateRequest{Path: a.l.EntryPath(p.Entry.Index), Data: p.Entry.Raw(), Acl: a.l.s.acl},
	)
	if err != nil {
		err = classifyAppend(p.Entry.Index, err, res)
		a.mu.Lock()
		a.fail(err)
		a.mu.Unlock()
	}
	p.err = err
	close(p.done)
}

// fail records the first failure and ends the term. Callers hold a.mu.
func (a *Appender) fail(err error) {
	if a.failed == nil {
		a.failed = err
		a.term.end(err)
	}
}

func classifyAppend(index uint64, err error, res []zk.MultiResponse) error {
	if len(res) == 2 {
		switch {
		case errors.Is(res[0].Error, zk.ErrBadVersion), errors.Is(res[0].Error, zk.ErrNoNode):
			return fmt.Errorf("zkcoord: append %d: %w", index, ErrFenced)
		case errors.Is(res[1].Error, zk.ErrNodeExists):
			return fmt.Errorf("zkcoord: append %d: index already written: %w", index, ErrFenced)
		}
	}
	return fmt.Errorf("zkcoord: append %d: %w: %w", index, ErrAmbiguous, err)
}
