package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/groupcommit"
	"github.com/zkbank/zkbank/cmd/bankd/internal/rounds"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
	"github.com/zkbank/zkbank/seal"
	"github.com/zkbank/zkbank/zkcoord"
)

// ErrTooLarge: one request holds more commands or bytes than an entry may.
var ErrTooLarge = errors.New("node: request too large for one log entry")

// leaderState is one term as seen by Submit.
type leaderState struct {
	term      *zkcoord.Term
	startHead uint64 // the log's end when the term began

	mu     sync.Mutex
	closed bool
	queue  chan *request
	push   pushHub // streams of confirmed entries to the followers
	// confirm proves, for linearizable reads, that the term still holds.
	confirm *rounds.Runner[struct{}]
	// bodyVersion is the body version the next entry is written in: the
	// log's, until every expected member reads a newer one.
	bodyVersion atomic.Uint32
	// sealKey is the data key the term seals with: the newest every
	// expected member holds (a sealed log).
	sealKey atomic.Uint32
	// feed hands each started append, in order, to the replica loop,
	// which applies the entry as soon as ZooKeeper confirms it, instead of
	// reading it back. Its capacity bounds how far appends run ahead.
	feed chan ownAppend
}

// ownAppend is an append in flight and the commands of its entry, so the
// leader applies its own entries without decoding them.
type ownAppend struct {
	*zkcoord.Pending
	cmds []engine.Command
}

// entry is the appended entry with its commands.
func (o ownAppend) entry() *engine.Entry {
	return &engine.Entry{Envelope: *o.Entry, Commands: o.cmds}
}

// enqueue hands r to the batcher, or fails at once if the term is over or
// the queue is full.
func (ls *leaderState) enqueue(r *request) error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.closed {
		return ErrNotLeader
	}
	select {
	case ls.queue <- r:
		return nil
	default:
		return ErrOverloaded
	}
}

// close stops intake and fails what the batcher never took: those commands
// were never appended, so a retry elsewhere is safe.
func (ls *leaderState) close() {
	ls.mu.Lock()
	ls.closed = true
	ls.mu.Unlock()
	ls.push.close()
	for {
		select {
		case r := <-ls.queue:
			r.finish(0, nil, ErrNotLeader)
		default:
			return
		}
	}
}

// Submit runs cmds through the log and returns the index of the entry that
// carried them and each command's outcome. Only the leader accepts; others
// answer ErrNotLeader. An error after the commands may have been appended
// (ErrLeadershipLost, ctx ending) means the outcome is unknown: retry with
// the same idempotency keys.
func (n *Node) Submit(ctx context.Context, cmds []engine.Command) (uint64, []Outcome, error) {
	r := newRequest(cmds)
	if len(cmds) > n.cfg.BatchCommandsMax || r.bytes > n.cfg.BatchBytesMax {
		return 0, nil, fmt.Errorf("%w: %d commands, about %d bytes (limits %d, %d)",
			ErrTooLarge, len(cmds), r.bytes, n.cfg.BatchCommandsMax, n.cfg.BatchBytesMax)
	}
	ls := n.leading.Load()
	if ls == nil {
		return 0, nil, ErrNotLeader
	}
	if err := fitsLog(ls.bodyVersion.Load(), cmds); err != nil {
		return 0, nil, err
	}
	if err := ls.enqueue(r); err != nil {
		return 0, nil, err
	}
	select {
	case <-r.done:
		return r.index, r.out, r.err
	case <-ctx.Done():
		return 0, nil, fmt.Errorf("%w: %w", ErrOutcomeUnknown, ctx.Err())
	}
}

// ReadIndex is the leader's half of a linearizable read: an index that
// covers every write acknowledged before the call, confirmed by a quorum
// round that this node still leads. The reader waits until it applied it.
// Concurrent calls share confirmations: each waits for the next round to
// start, which proves leadership at a moment after the index was taken.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	ls := n.leading.Load()
	if ls == nil {
		return 0, ErrNotLeader
	}
	// Every write this leader acknowledged is applied here; writes of
	// earlier terms are at or below the head it recovered.
	at := max(n.Applied(), ls.startHead)
	if _, err := ls.confirm.Join(ctx); err != nil {
		return 0, err
	}
	return at, nil
}

// confirmRound is one confirmation that the term still holds.
func (n *Node) confirmRound(term *zkcoord.Term) func() (struct{}, error) {
	return func() (struct{}, error) {
		if err := n.el.Confirm(term); err != nil {
			return struct{}{}, fmt.Errorf("%w: %w", ErrNotLeader, err)
		}
		return struct{}{}, nil
	}
}

// leadTerms runs each term this node wins.
func (n *Node) leadTerms(ctx context.Context) {
	for {
		select {
		case term := <-n.el.Terms():
			if term.Err() == nil {
				n.lead(term)
			}
		case <-ctx.Done():
			return
		}
	}
}

func (n *Node) lead(term *zkcoord.Term) {
	if err := n.checkLogHeld(term); err != nil {
		n.stop(err) // leading would write a second history over the one applied
		return
	}
	head, err := n.recoverHead(term)
	if errors.Is(err, zkcoord.ErrUnverifiedApplied) {
		n.stop(fmt.Errorf("node: leading epoch %d: %w", term.Epoch, err)) // deleting it could undo what a member did
		return
	}
	if err != nil {
		n.cfg.Logger.Warn("could not take over the log; waiting for the term to end", "epoch", term.Epoch, "err", err)
		<-term.Done()
		return
	}
	ls := &leaderState{term: term, startHead: head.Index, queue: make(chan *request, n.cfg.QueueMax),
		feed: make(chan ownAppend, 2*n.cfg.InflightMax), confirm: rounds.New(n.confirmRound(term))}
	if err := n.checkBody(head.BodyVersion, head.Index); err != nil {
		n.stop(err) // leading would hold the cluster: stop, as the replica will at that entry
		return
	}
	ls.bodyVersion.Store(head.BodyVersion)
	if err := n.raiseBodyVersion(ls); err != nil { // before the first entry of a fresh cluster
		n.cfg.Logger.Warn("reading the registry failed; keeping the log's body version for now", "err", err)
	}
	n.chooseSealKey(ls)
	n.appendHead.Store(head.Index)
	n.leading.Store(ls)
	select { // wake the replica loop: it switches from tailing to the feed
	case n.leadStarted <- struct{}{}:
	default:
	}
	n.cfg.Logger.Info("leading", "epoch", term.Epoch, "log_head", head.Index)
	go n.trimWhileLeading(term)
	go n.keepVersion(ls)
	go n.keepTime(ls)
	app := n.log.NewAppender(term, head, n.cfg.InflightMax)
	if n.cfg.Seal != nil {
		key, cert := n.cfg.Seal.Identity()
		app.SealWith(n.cfg.Seal.Trust.NewTerm(key, cert, ls.sealKey.Load))
	}
	n.batch(term, app, ls, head.TimeMs)
	ls.close()
	n.leading.CompareAndSwap(ls, nil)
	n.cfg.Logger.Info("stopped leading", "epoch", term.Epoch, "cause", term.Err())
}

// checkLogHeld stops a new leader when ZooKeeper lost the log it applied
// (its data wiped under a running cluster) or its epoch is not above
// what was applied: the new term would fork the bank.
func (n *Node) checkLogHeld(term *zkcoord.Term) error {
	err := n.log.CheckHolds(n.Applied())
	if errors.Is(err, zkcoord.ErrLogLost) {
		return fmt.Errorf("node: leading epoch %d: %w", term.Epoch, lostHint(err))
	}
	if applied := n.appliedEpoch(); err == nil && term.Epoch <= applied {
		return fmt.Errorf("node: leading epoch %d: %w: the log this node applied is at epoch %d already", term.Epoch, lostHint(zkcoord.ErrLogLost), applied)
	}
	return nil // another error: recoverHead meets it again and waits for the term to end
}

func (n *Node) appliedEpoch() uint64 {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.eng.Epoch()
}

// lostHint says what to do about ErrLogLost.
func lostHint(err error) error {
	if errors.Is(err, zkcoord.ErrLogLost) {
		return fmt.Errorf("%w; if ZooKeeper lost its data, stop every bankd and restore (docs/deployment.md, \"Disaster recovery\")", err)
	}
	return err
}

// recoverHead finds the end of the log for a new term, starting from what
// this node applied. When that point was trimmed it waits for the replica
// loop to install a snapshot and tries again.
func (n *Node) recoverHead(term *zkcoord.Term) (zkcoord.Head, error) {
	for {
		n.mu.RLock()
		from := zkcoord.Head{Index: n.eng.Index(), Hash: n.eng.LastHash(), Epoch: n.eng.Epoch(), BodyVersion: n.eng.BodyVersion(), TimeMs: n.eng.TimeMs()}
		n.mu.RUnlock()
		opts, err := n.recoverOptions()
		if err != nil {
			return from, err
		}
		head, err := n.log.RecoverWith(term.Context(), from, opts)
		if !errors.Is(err, zkcoord.ErrTrimmed) {
			return head, err
		}
		ctx, cancel := context.WithTimeout(term.Context(), time.Second)
		n.WaitApplied(ctx, from.Index+1)
		cancel()
		if term.Err() != nil {
			return head, term.Err()
		}
	}
}

// recoverOptions let a new leader clear junk at the head: what does not
// verify from what it applied, above what any live member reported
// applied.
func (n *Node) recoverOptions() (zkcoord.RecoverOptions, error) {
	cur, err := n.cursor()
	if err != nil {
		return zkcoord.RecoverOptions{}, err
	}
	live, err := n.sess.Members()
	if err != nil {
		return zkcoord.RecoverOptions{}, fmt.Errorf("node: members before recovery: %w", err)
	}
	opts := zkcoord.RecoverOptions{Keep: n.Applied(), Check: func(env *entry.Envelope) error {
		if err := n.checkBody(env.BodyVersion, env.Index); err != nil {
			return err // this binary, not the entry, is at fault
		}
		_, err := openWith(cur, env)
		if errors.Is(err, seal.ErrUnverified) || errors.Is(err, engine.ErrMalformedEntry) {
			return fmt.Errorf("%w: %w", zkcoord.ErrJunk, err)
		}
		return err
	}}
	for _, m := range live {
		opts.Keep = max(opts.Keep, m.Applied)
	}
	return opts, nil
}

// batch is the group commit (package groupcommit): while appends are in
// flight, requests pile up in the queue, and the next entry takes all of
// them (within limits). Small entries wait for the pipeline: while an
// append is in flight, an entry of fewer than smallEntryCommands
// commands is not sent until it lands, and takes what queued meanwhile.
// Each entry costs ZooKeeper a quorum write (three fsyncs) and every node
// a journal fsync whatever its size, so on a busy machine a few larger
// entries beat many tiny ones, and the shorter CPU queues more than repay
// the wait (docs/benchmarks.md); big entries (the batch API) still use
// every slot.
func (n *Node) batch(term *zkcoord.Term, app *zkcoord.Appender, ls *leaderState, headMs int64) {
	lim := groupcommit.Limits{Items: n.cfg.BatchCommandsMax, Bytes: n.cfg.BatchBytesMax, Inflight: n.cfg.InflightMax,
		SmallItems: smallEntryCommands, SmallInflight: smallEntryInflight}
	n.warnClockSkew(term)
	lastMs := headMs
	unsent := groupcommit.Run(term.Done(), ls.queue, lim, func(g groupcommit.Group[*request], landed func()) error {
		lastMs = stampMs(lastMs, n.cfg.Clock(), term.ZooKeeperNow())
		return n.appendGroup(term, app, ls, g, lastMs, landed)
	})
	for _, r := range unsent { // never appended: a retry elsewhere is safe
		r.finish(0, nil, ErrNotLeader)
	}
}

// Small-entry batching (see batch).
const (
	smallEntryCommands = 64
	smallEntryInflight = 1
)

// appendGroup starts the append of one entry holding g's commands and
// hands it to the replica loop; landed is called once ZooKeeper answered.
// An error means nothing was sent.
func (n *Node) appendGroup(term *zkcoord.Term, app *zkcoord.Appender, ls *leaderState, g groupcommit.Group[*request], timeMs int64, landed func()) error {
	cmds := make([]engine.Command, 0, g.Items)
	for _, r := range g.Requests {
		cmds = append(cmds, r.cmds...)
	}
	version := ls.bodyVersion.Load()
	cmds, err := engine.ForBody(version, cmds) // what the body holds is what this node applies
	if err != nil {
		return err
	}
	body, err := engine.EncodeCommands(cmds)
	if err != nil {
		return err
	}
	index := app.Next()
	n.waiters.add(index, &entryWaiter{epoch: term.Epoch, reqs: g.Requests})
	p, err := app.Append(term.Context(), version, body, timeMs)
	if err != nil {
		n.waiters.take(index) // the batcher hands the requests back
		return err
	}
	n.appendHead.Store(index)
	n.cfg.Hooks.batchSent(g.Requests, len(cmds), g.Bytes)
	go func() {
		defer landed()
		n.awaitAppend(index, p, time.Now())
	}()
	select {
	case ls.feed <- ownAppend{p, cmds}:
	case <-term.Done(): // the tailer reads what landed
	}
	return nil
}

// awaitAppend fails the entry's requests if its append failed; on success
// the replica loop answers them once the entry is applied.
func (n *Node) awaitAppend(index uint64, p *zkcoord.Pending, sent time.Time) {
	<-p.Done()
	n.cfg.Hooks.stage(StageLogAppend, sent)
	if err := p.Err(); err != nil {
		n.waiters.fail(index, fmt.Errorf("%w: %w", ErrLeadershipLost, err))
	}
}
