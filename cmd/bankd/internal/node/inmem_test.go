package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/bankd/internal/peer"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/zkcoord"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// These tests run nodes in one process on a shared ZooKeeper ensemble,
// reaching each other through peer.Network (no sockets, no HTTP): the
// leader and replica logic on its own.

func TestMain(m *testing.M) { os.Exit(zktest.Main(m)) }

const sessionTimeout = 2 * time.Second

type inmem struct {
	t       *testing.T
	net     *peer.Network
	ens     *zktest.Ensemble
	root    string
	dir     string
	mu      sync.Mutex // guards nodes for the workers of a test
	nodes   map[string]*node.Node
	cutters map[string]*zktest.Cutter
	reads   uint32 // body version the next node started reads (0: this binary's)
	tune    func(*node.Config)
}

func newInmem(t *testing.T, ids ...string) *inmem { return newInmemTuned(t, nil, ids...) }

// newInmemTuned is newInmem with tune applied to every node's config.
func newInmemTuned(t *testing.T, tune func(*node.Config), ids ...string) *inmem {
	c := &inmem{t: t, net: peer.NewNetwork(), ens: zktest.Shared(t, 1), root: zktest.Root(t), dir: t.TempDir(),
		nodes: map[string]*node.Node{}, cutters: map[string]*zktest.Cutter{}, tune: tune}
	t.Cleanup(func() {
		for id := range c.nodes {
			c.stop(id)
		}
	})
	for _, id := range ids {
		c.start(id)
	}
	if len(ids) > 0 {
		c.waitLeader()
	}
	return c
}

func (c *inmem) start(id string) {
	c.t.Helper()
	n, err := c.tryStart(id)
	if err != nil {
		c.t.Fatalf("start %s: %v", id, err)
	}
	c.mu.Lock()
	c.nodes[id] = n
	c.mu.Unlock()
	c.net.Add("inmem://"+id, n)
}

func (c *inmem) tryStart(id string) (*node.Node, error) {
	c.cutters[id] = &zktest.Cutter{}
	cfg := node.Config{
		ID: id, Addr: "inmem://" + id, DataDir: filepath.Join(c.dir, id), Transport: c.net, BodyVersionMax: c.reads,
		ZooKeeper: zkcoord.Config{Servers: c.ens.Connect(), Root: c.root, TLS: c.ens.TLS(), Auth: c.ens.Auth(), SessionTimeout: sessionTimeout, Dialer: c.cutters[id].Dial},
		Logger:    slog.New(slog.NewTextHandler(zktest.LogWriter(c.t), nil)).With("node", id),
	}
	if c.tune != nil {
		c.tune(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return node.Start(ctx, cfg)
}

func (c *inmem) stop(id string) {
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	if err := n.Close(); err != nil {
		c.t.Errorf("%s stopped with %v", id, err)
	}
}

// running is a snapshot of the nodes that run now.
func (c *inmem) running() []*node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*node.Node, 0, len(c.nodes))
	for _, n := range c.nodes {
		out = append(out, n)
	}
	return out
}

func (c *inmem) waitLeader() *node.Node {
	c.t.Helper()
	var leader *node.Node
	zktest.Eventually(c.t, 30*time.Second, "a leader every node knows", func() bool {
		leader = nil
		for _, n := range c.running() {
			if n.Status().Leader {
				leader = n
			}
		}
		if leader == nil {
			return false
		}
		for _, n := range c.running() {
			if l, ok := n.Leader(); !ok || l.ID != leader.ID() || !n.Ready() {
				return false
			}
		}
		return true
	})
	return leader
}

func (c *inmem) followers() []*node.Node {
	var out []*node.Node
	for _, n := range c.running() {
		if !n.Status().Leader {
			out = append(out, n)
		}
	}
	return out
}

// converged waits until every node applied the same index with the same
// state hash, and returns it.
func (c *inmem) converged() node.Digest {
	c.t.Helper()
	var d node.Digest
	zktest.Eventually(c.t, 30*time.Second, "every node at one state", func() bool {
		first := true
		for _, n := range c.running() {
			got := n.Digest()
			if first {
				d, first = got, false
			} else if got != d {
				return false
			}
		}
		return true
	})
	return d
}

func write(t *testing.T, n *node.Node, cmds ...engine.Command) (uint64, []node.Outcome) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*sessionTimeout)
	defer cancel()
	index, out, err := n.Write(ctx, cmds)
	if err != nil {
		t.Fatalf("write through %s: %v", n.ID(), err)
	}
	return index, out
}

func deposit(account, key string) engine.Command {
	return engine.Command{Op: engine.OpDeposit, Key: key, Account: account, Amount: 1}
}

// TestWritesFromAnyNodeApplyOnce: a write through a follower reaches the
// log through the leader; the same key through another node answers the
// first outcome and changes nothing.
func TestWritesFromAnyNodeApplyOnce(t *testing.T) {
	c := newInmem(t, "n1", "n2", "n3")
	f := c.followers()[0]
	_, out := write(t, f, engine.Command{Op: engine.OpCreateAccount, Key: "open", Account: "A", Name: "Ada", Amount: 10})
	if out[0].Code != engine.CodeOK {
		t.Fatalf("create: %+v", out[0])
	}
	for _, n := range c.running() {
		write(t, n, deposit("A", "dep-"+n.ID()))
	}
	_, again := write(t, c.followers()[1], deposit("A", "dep-"+f.ID()))
	if !again[0].Replayed || again[0].Accounts[0].Balance > 13 {
		t.Fatalf("a retry through another node: %+v", again[0])
	}
	if d := c.converged(); d.Totals.Balance != 13 {
		t.Fatalf("total %d, want 10 + one deposit per node", d.Totals.Balance)
	}
}

// TestANewLeaderAppliesTheOldTermThenItsOwn: after the leader stops, the
// next one first applies what its predecessor appended (tailing), then
// switches to applying its own appends; the old leader comes back as a
// follower and catches up. Every acknowledged write is in the state.
func TestANewLeaderAppliesTheOldTermThenItsOwn(t *testing.T) {
	c := newInmem(t, "n1", "n2", "n3")
	old := c.waitLeader()
	write(t, old, engine.Command{Op: engine.OpCreateAccount, Key: "open", Account: "A", Name: "Ada"})
	const before, after = 30, 30
	for i := range before {
		write(t, old, deposit("A", fmt.Sprint("before-", i)))
	}
	oldEpoch, oldID := old.Status().Epoch, old.ID()
	c.stop(oldID)
	next := c.waitLeader()
	if next.Status().Epoch <= oldEpoch {
		t.Fatalf("new term's epoch %d not above %d", next.Status().Epoch, oldEpoch)
	}
	for i := range after {
		write(t, c.followers()[0], deposit("A", fmt.Sprint("after-", i)))
	}
	c.start(oldID)
	d := c.converged()
	if d.Totals.Balance != before+after || d.Index < 1+before+after {
		t.Fatalf("digest %+v, want %d deposits applied", d, before+after)
	}
	if c.nodes[oldID].Status().Leader {
		t.Fatal("the old leader leads again without an election")
	}
}

// TestAFollowerCutOffZooKeeperLivesOnPushes: the leader's pushes are
// hints a follower's tailer applies without ZooKeeper; once the pushes
// stop (the leader unreachable to it), it reads ZooKeeper again.
func TestAFollowerCutOffZooKeeperLivesOnPushes(t *testing.T) {
	c := newInmem(t, "n1", "n2")
	leader, f := c.waitLeader(), c.followers()[0]
	write(t, leader, engine.Command{Op: engine.OpCreateAccount, Key: "open", Account: "A", Name: "Ada"})
	zktest.Eventually(t, 10*time.Second, "the push stream up", func() bool {
		write(t, leader, deposit("A", fmt.Sprint("warm-", time.Now().UnixNano())))
		return f.Status().Pushed > 0
	})
	c.converged()

	c.cutters[f.ID()].Cut()
	pushed := f.Status().Pushed
	const n = 20
	for i := range n {
		write(t, leader, deposit("A", fmt.Sprint("pushed-", i)))
	}
	head := leader.Applied()
	zktest.Eventually(t, 20*time.Second, "the follower applies the pushes", func() bool { return f.Applied() >= head })
	if got := f.Status().Pushed - pushed; got < n {
		t.Fatalf("%d of %d entries from pushes while cut off ZooKeeper", got, n)
	}
	c.cutters[f.ID()].Resume()

	c.net.Cut("inmem://" + leader.ID()) // no more pushes to anyone
	for i := range n {
		write(t, leader, deposit("A", fmt.Sprint("tailed-", i)))
	}
	pushed = f.Status().Pushed
	c.converged()
	if got := f.Status().Pushed - pushed; got != 0 {
		t.Fatalf("%d entries from pushes with the leader cut off", got)
	}
}
