package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/rounds"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
	"github.com/zkbank/zkbank/journal/datadir"
	"github.com/zkbank/zkbank/zkcoord"
)

// Errors callers act on. All but ErrStopped are worth a retry (through
// the leader, with the same idempotency keys).
var (
	ErrNotLeader      = errors.New("node: not the leader")
	ErrLeadershipLost = errors.New("node: leadership lost before the outcome was known")
	ErrOverloaded     = errors.New("node: too many requests waiting")
	ErrStopped        = errors.New("node: stopped")
)

// Node is a running zkbank server.
type Node struct {
	cfg   Config
	dir   *datadir.Dir
	sess  *zkcoord.Session
	log   *zkcoord.Log
	el    *zkcoord.Election
	mem   *zkcoord.Member
	peers *peerWatch

	mu      sync.RWMutex // guards eng (the pointer and reads of it)
	eng     *engine.Engine
	applied chan struct{} // closed and replaced after each apply

	snapIndex  atomic.Uint64 // newest snapshot on disk
	oldestSnap atomic.Uint64 // oldest snapshot kept, once one was saved (the journal trims below it)
	// journalSized is when trimJournal last measured the journal's bytes.
	journalSized time.Time
	snapTaken    uint64         // index of the last capture (replica loop only)
	snapBusy     atomic.Bool    // a snapshot file is being written
	snapWriter   sync.WaitGroup // the goroutine writing it; the data dir closes after it
	logBytes     logBytes       // sizes of the entries applied, for snapshots and trims
	startHead    uint64         // log head seen at start; ready once applied
	ready        atomic.Bool
	stopping     atomic.Bool
	leading      atomic.Pointer[leaderState]
	leadStarted  chan struct{}        // signalled when a term starts
	appendHead   atomic.Uint64        // last index appended while leading
	hints        chan *entry.Envelope // entries the leader pushed, for the tailer
	hinted       atomic.Uint64        // entries the tailer took from hints
	stalled      stallState           // the entry the replica waits on, if any

	waiters waiters
	digests digestWaiters // DigestAt's, by index
	// leaderReads shares a follower's calls to the leader for read
	// indexes (LinearizableIndex).
	leaderReads *rounds.Runner[uint64]

	cancel context.CancelFunc
	fatal  atomic.Pointer[error] // set by stop
	done   chan struct{}
	err    error // why the node stopped, once done is closed
}

// Start restarts from the data dir, connects to ZooKeeper, joins the
// membership and the election, and starts replicating. It returns once the
// node runs; Ready reports when it has caught up.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, applied: make(chan struct{}), done: make(chan struct{}), leadStarted: make(chan struct{}, 1),
		hints: make(chan *entry.Envelope, hintQueueMax)}
	if err := n.openDataDir(); err != nil {
		return nil, err
	}
	if err := n.joinCluster(ctx); err != nil {
		n.dir.Close()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.el = n.sess.Campaign(runCtx, zkcoord.Candidate{ID: cfg.ID, Addr: cfg.Addr})
	n.peers = watchPeers(runCtx, n.sess)
	n.leaderReads = rounds.New(n.askLeader)
	go n.run(runCtx)
	return n, nil
}

func (n *Node) openDataDir() error {
	dopts := datadir.Options{Engine: n.cfg.Engine, Retain: n.cfg.SnapshotRetain}
	if n.cfg.Seal != nil {
		dopts.Decode, dopts.CheckPeerSnapshot = n.cfg.Seal.Trust.DecodeRaw, n.cfg.Seal.Trust.CheckSnapshot
	}
	dir, err := datadir.Open(n.cfg.DataDir, dopts)
	if err != nil {
		return fmt.Errorf("node: open data dir: %w", err)
	}
	if n.cfg.Seal != nil {
		dir.Snapshots.SignWith(n.cfg.Seal.Trust.SnapshotSigner(n.cfg.Seal.Identity))
	}
	started := time.Now()
	rec, err := dir.Recover(nil)
	if err != nil {
		dir.Close()
		return fmt.Errorf("node: restart from %s: %w", n.cfg.DataDir, err)
	}
	for _, s := range rec.Skipped {
		n.cfg.Logger.Warn("skipped a snapshot at restart", "path", s.Info.Path, "reason", s.Err)
	}
	n.dir, n.eng = dir, rec.Engine
	if rec.From != nil {
		n.snapIndex.Store(rec.From.Index)
		n.snapTaken = rec.From.Index
	}
	n.cfg.Logger.Info("restarted from data dir", "dir", n.cfg.DataDir, "index", rec.Engine.Index(),
		"replayed", rec.Replayed, "took", time.Since(started).Round(time.Millisecond))
	return nil
}

func (n *Node) joinCluster(ctx context.Context) error {
	zcfg := n.cfg.ZooKeeper
	if zcfg.Logger == nil {
		zcfg.Logger = n.cfg.Logger
	}
	sess, err := zkcoord.Connect(ctx, zcfg)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.sess, n.log = sess, sess.Log(n.cfg.SegmentSize)
	if n.startHead, err = n.log.LastIndex(); err != nil {
		sess.Close()
		return fmt.Errorf("node: read the log head: %w", err)
	}
	if err := n.log.CheckHolds(n.Applied()); err != nil {
		sess.Close()
		return fmt.Errorf("node: %w", lostHint(err))
	}
	if err := n.register(); err != nil {
		sess.Close()
		return fmt.Errorf("node: %w", err)
	}
	rec := zkcoord.MemberRecord{ID: n.cfg.ID, Addr: n.cfg.Addr, Applied: n.Applied(), Snapshot: n.snapIndex.Load()}
	if n.mem, err = sess.Join(context.Background(), rec, n.cfg.ProgressInterval); err != nil {
		sess.Close()
		return fmt.Errorf("node: join membership: %w", err)
	}
	return nil
}

// run replicates and leads until the node stops, then releases everything.
func (n *Node) run(ctx context.Context) {
	defer close(n.done)
	go n.leadTerms(ctx)
	go n.receivePushes(ctx)
	n.markReadyWhenCaughtUp()
	err := n.replicate(ctx)
	if f := n.fatal.Load(); err == nil && f != nil {
		err = *f
	}
	n.stopping.Store(true)
	n.cancel()
	n.sess.Close()
	n.snapWriter.Wait()
	if cerr := n.dir.Close(); err == nil {
		err = cerr
	}
	n.err = err
	if err != nil {
		n.cfg.Logger.Error("node stopped", "err", err)
	}
}

// stop stops the node because of err, which Err then reports.
func (n *Node) stop(err error) {
	n.fatal.CompareAndSwap(nil, &err)
	n.cancel()
}

// Close stops the node: it leaves the cluster at once (closing the session
// deletes its ephemeral znodes, so a new leader is elected without waiting
// for the session timeout) and closes the data dir.
func (n *Node) Close() error {
	n.stopping.Store(true)
	n.cancel()
	<-n.done
	return n.err
}

// Done is closed when the node has stopped, by Close or by a fatal error
// (see Err).
func (n *Node) Done() <-chan struct{} { return n.done }

// Err is why the node stopped; nil after a clean Close.
func (n *Node) Err() error {
	select {
	case <-n.done:
		return n.err
	default:
		return nil
	}
}

// ID is this node's id.
func (n *Node) ID() string { return n.cfg.ID }

// Ready reports whether the node has caught up with the log head it saw at
// start and is not stopping.
func (n *Node) Ready() bool { return n.ready.Load() && !n.stopping.Load() }

// Drain marks the node not ready, ahead of a graceful shutdown.
func (n *Node) Drain() {
	n.stopping.Store(true)
	if ls := n.leading.Load(); ls != nil {
		ls.push.close() // streams would hold the HTTP server's shutdown
	}
}

func (n *Node) markReadyWhenCaughtUp() {
	if n.Applied() >= n.startHead {
		n.setReady()
	}
}

func (n *Node) setReady() {
	if !n.ready.Swap(true) {
		n.cfg.Logger.Info("ready", "applied", n.Applied(), "log_head_at_start", n.startHead)
	}
}
