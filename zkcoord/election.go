package zkcoord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// Candidate identifies a node in the election and as leader.
type Candidate struct {
	ID   string `json:"id"`
	Addr string `json:"addr"` // the node's API address, for forwarding
}

// LeaderRecord is the content of the epoch znode: the current epoch and who
// set it. Every node watches it to know where to forward writes.
type LeaderRecord struct {
	Epoch uint64 `json:"epoch"`
	ID    string `json:"id"`
	Addr  string `json:"addr"`
}

// Errors that end a term.
var (
	ErrLeadershipLost = errors.New("zkcoord: leadership lost")
	ErrFenced         = errors.New("zkcoord: fenced: another leader took a newer epoch")
)

// Term is one period during which this node leads. Its epoch version is
// the fence: every append checks that the epoch znode still has it.
type Term struct {
	Epoch        uint64
	epochVersion int32
	// zkTime is the epoch write's mtime, ZooKeeper's clock when the term
	// began; zkAt the local instant its answer came (with the monotonic
	// reading, which no wall-clock step moves).
	zkTime, zkAt time.Time
	ctx          context.Context
	cancel       context.CancelCauseFunc
}

// ZooKeeperNow is ZooKeeper's clock as this term sees it: the mtime of the
// write that fenced the epoch, plus the monotonic time elapsed since. It
// lags the true time by at most that write's round trip, and a leader's
// wall clock, however wrong, does not move it.
func (t *Term) ZooKeeperNow() time.Time { return t.zkTime.Add(time.Since(t.zkAt)) }

// Done is closed when the term ends.
func (t *Term) Done() <-chan struct{} { return t.ctx.Done() }

// Err says why the term ended (nil while it lasts).
func (t *Term) Err() error { return context.Cause(t.ctx) }

// Context is canceled, with the reason as its cause, when the term ends.
func (t *Term) Context() context.Context { return t.ctx }

func (t *Term) end(cause error) { t.cancel(cause) }

// Election campaigns for leadership on behalf of one node.
type Election struct {
	s  *Session
	me Candidate

	terms chan *Term

	mu      sync.Mutex
	current *Term
	leader  LeaderRecord
	known   bool // leader has been read at least once
}

// Campaign starts campaigning and keeps at it (rejoining after a session
// expiry) until ctx ends. New terms arrive on Terms.
func (s *Session) Campaign(ctx context.Context, me Candidate) *Election {
	e := &Election{s: s, me: me, terms: make(chan *Term, 1)}
	go e.run(ctx)
	go e.watchLeader(ctx)
	return e
}

// Terms delivers each term this node wins. A term may already be over when
// it is received: check Done.
func (e *Election) Terms() <-chan *Term { return e.terms }

// Leader is the latest leader record seen in ZooKeeper.
func (e *Election) Leader() (LeaderRecord, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader, e.known
}

// Current is the term in progress, or nil.
func (e *Election) Current() *Term {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.current != nil && e.current.ctx.Err() == nil {
		return e.current
	}
	return nil
}

func (e *Election) run(ctx context.Context) {
	events := e.s.Subscribe()
	defer e.s.unsubscribe(events)
	defer e.endTerm(ErrLeadershipLost)
	var node string
	for ctx.Err() == nil {
		if !e.s.Connected() {
			e.endTerm(fmt.Errorf("%w: ZooKeeper session %v", ErrLeadershipLost, e.s.State()))
			if e.s.State() == zk.StateExpired {
				node = "" // the ephemeral candidate died with the session
			}
			wait[struct{}](ctx, events, nil)
			continue
		}
		var err error
		node, err = e.step(ctx, node, events)
		if err != nil {
			e.s.cfg.Logger.Warn("election step failed; retrying", "err", err)
			wait(ctx, events, time.After(e.s.cfg.SessionTimeout/4))
		}
	}
}

// step makes sure this node has a candidate znode, then either leads (if
// it is the lowest) until something changes, or waits on its predecessor.
// It returns the candidate path to keep using ("" to create a new one).
func (e *Election) step(ctx context.Context, node string, events <-chan struct{}) (string, error) {
	if node == "" {
		data, _ := json.Marshal(e.me)
		p, err := e.s.Conn.Create(e.s.Path("election", "n_"), data, zk.FlagEphemeral|zk.FlagSequence, e.s.acl)
		if err != nil {
			return "", fmt.Errorf("zkcoord: create candidate: %w", err)
		}
		node = p
	}
	names, _, err := e.s.Conn.Children(e.s.Path("election"))
	if err != nil {
		return node, fmt.Errorf("zkcoord: list candidates: %w", err)
	}
	pos, ordered := position(names, path.Base(node))
	if pos < 0 {
		return "", nil // our candidate is gone (expired session): start over
	}
	if pos == 0 {
		return node, e.lead(ctx, node, events)
	}
	pred := e.s.Path("election", ordered[pos-1])
	exists, _, watch, err := e.s.Conn.ExistsW(pred)
	if err != nil {
		return node, fmt.Errorf("zkcoord: watch %s: %w", pred, err)
	}
	if exists {
		wait(ctx, events, watch)
	}
	return node, nil
}

// position sorts candidate names by their sequence suffix, as integers,
// and returns where mine is (-1 if absent).
func position(names []string, mine string) (int, []string) {
	seq := func(n string) int64 {
		i := strings.LastIndex(n, "_")
		v, err := strconv.ParseInt(n[i+1:], 10, 64)
		if err != nil {
			return -1
		}
		return v
	}
	sort.Slice(names, func(i, j int) bool { return seq(names[i]) < seq(names[j]) })
	for i, n := range names {
		if n == mine {
			return i, names
		}
	}
	return -1, names
}

// lead fences the epoch, publishes a term and holds it until the session
// wavers, the epoch moves, or ctx ends.
func (e *Election) lead(ctx context.Context, node string, events <-chan struct{}) error {
	rec, f, err := e.fence(node)
	if err != nil {
		return err
	}
	tctx, cancel := context.WithCancelCause(ctx)
	term := &Term{Epoch: rec.Epoch, epochVersion: f.version, zkTime: f.mtime, zkAt: f.at, ctx: tctx, cancel: cancel}
	e.mu.Lock()
	e.current = term
	e.mu.Unlock()
	e.s.cfg.Logger.Info("leadership gained", "epoch", rec.Epoch, "candidate", node)
	select {
	case e.terms <- term:
	case <-ctx.Done():
		return nil
	}
	for e.s.Connected() && term.ctx.Err() == nil {
		wait(ctx, events, term.Done())
	}
	e.endTerm(fmt.Errorf("%w: ZooKeeper session %v", ErrLeadershipLost, e.s.State()))
	return nil
}

// fenced is what the epoch write tells a new term: the epoch znode's
// version, and ZooKeeper's clock (the write's mtime) with the local
// instant the answer came.
type fenced struct {
	version   int32
	mtime, at time.Time
}

// fence bumps the epoch with a versioned write guarded by this node's
// candidate znode: it succeeds only while the candidate exists, and only
// if nobody else moved the epoch since it was read.
func (e *Election) fence(node string) (LeaderRecord, fenced, error) {
	epochPath := e.s.Path("epoch")
	data, stat, err := e.s.Conn.Get(epochPath)
	if errors.Is(err, zk.ErrNoNode) {
		_, err = e.s.Conn.Create(epochPath, mustJSON(LeaderRecord{}), 0, e.s.acl)
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return LeaderRecord{}, fenced{}, fmt.Errorf("zkcoord: create epoch: %w", err)
		}
		data, stat, err = e.s.Conn.Get(epochPath)
	}
	if err != nil {
		return LeaderRecord{}, fenced{}, fmt.Errorf("zkcoord: read epoch: %w", err)
	}
	var cur LeaderRecord
	if err := json.Unmarshal(data, &cur); err != nil {
		return LeaderRecord{}, fenced{}, fmt.Errorf("zkcoord: epoch znode holds %q: %w", data, err)
	}
	next := LeaderRecord{Epoch: cur.Epoch + 1, ID: e.me.ID, Addr: e.me.Addr}
	res, err := e.s.Conn.Multi(
		&zk.CheckVersionRequest{Path: node, Version: -1},
		&zk.SetDataRequest{Path: epochPath, Data: mustJSON(next), Version: stat.Version},
	)
	at := time.Now()
	if err != nil {
		return LeaderRecord{}, fenced{}, fmt.Errorf("zkcoord: fence epoch %d: %w", next.Epoch, err)
	}
	f := fenced{version: stat.Version + 1, mtime: at, at: at}
	if len(res) == 2 && res[1].Stat != nil {
		f.mtime = time.UnixMilli(res[1].Stat.Mtime)
	}
	return next, f, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are marshalled here
	}
	return b
}

func (e *Election) endTerm(cause error) {
	e.mu.Lock()
	t := e.current
	e.current = nil
	e.mu.Unlock()
	if t != nil && t.ctx.Err() == nil {
		t.end(cause)
		e.s.cfg.Logger.Info("leadership lost", "epoch", t.Epoch, "cause", cause)
	}
}

// wait returns on a session event, when ch yields (a nil ch never does),
// or when ctx ends.
func wait[T any](ctx context.Context, events <-chan struct{}, ch <-chan T) {
	select {
	case <-events:
	case <-ch:
	case <-ctx.Done():
	}
}

// watchLeader keeps Leader up to date and ends this node's term as soon as
// the epoch moves past it.
func (e *Election) watchLeader(ctx context.Context) {
	events := e.s.Subscribe()
	defer e.s.unsubscribe(events)
	for ctx.Err() == nil {
		data, _, watch, err := e.s.Conn.GetW(e.s.Path("epoch"))
		if err != nil {
			if _, _, w, werr := e.s.Conn.ExistsW(e.s.Path("epoch")); errors.Is(err, zk.ErrNoNode) && werr == nil {
				wait(ctx, events, w) // no leader yet: wait for the first
			} else {
				wait(ctx, events, time.After(e.s.cfg.SessionTimeout/4))
			}
			continue
		}
		var rec LeaderRecord
		if json.Unmarshal(data, &rec) == nil {
			e.noteLeader(rec)
		}
		select {
		case <-watch:
		case <-ctx.Done():
		}
	}
}

func (e *Election) noteLeader(rec LeaderRecord) {
	e.mu.Lock()
	e.leader, e.known = rec, true
	t := e.current
	e.mu.Unlock()
	if t != nil && rec.Epoch > t.Epoch {
		e.endTerm(fmt.Errorf("%w: epoch %d set by %s", ErrFenced, rec.Epoch, rec.ID))
	}
}

// Confirm proves that t still holds the fence at this moment: a Multi with
// only the epoch check is a write, so it takes a quorum round through the
// ZooKeeper leader, and it fails once a newer leader bumped the epoch.
// Linearizable reads are answered only after it succeeds.
func (e *Election) Confirm(t *Term) error {
	if err := t.Err(); err != nil {
		return err
	}
	res, err := e.s.Conn.Multi(&zk.CheckVersionRequest{Path: e.s.Path("epoch"), Version: t.epochVersion})
	if err != nil {
		if len(res) == 1 && errors.Is(res[0].Error, zk.ErrBadVersion) {
			err = ErrFenced
			e.endTerm(fmt.Errorf("%w: epoch moved past %d", ErrFenced, t.Epoch))
		}
		return fmt.Errorf("zkcoord: confirm epoch %d: %w", t.Epoch, err)
	}
	return t.Err()
}
