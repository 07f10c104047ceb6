package systest

import (
	"context"
	"fmt"
	"path"
	"sync"
	"testing"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine/entry"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// TestZooKeeperHoldsBoundedLogBytes: every ZooKeeper server keeps the log
// in its heap, so what the leader leaves there is bounded in bytes, not
// only in entries, and a live follower that stalls does not hold it. The
// entry limits here are far out of reach; only the byte limits trim. The
// stalled follower, released, finds the log trimmed past it, installs a
// snapshot and converges.
//
// The stall holds both ways a follower learns entries: its replica loop
// (in the EntryApplied hook) and the leader's pushes to it (dropped while
// it stalls, as by a broken stream). Far more entries are written than its
// tailer buffers (64), so once released it must read ZooKeeper past the
// trim point: the snapshot path is taken every time, not when timing
// happens to cooperate.
func TestZooKeeperHoldsBoundedLogBytes(t *testing.T) {
	const lagMax = 64 << 10
	var stall gate
	c := newCluster(t, zktest.Shared(t, 1), 3, func(cfg *node.Config) {
		cfg.SnapshotEveryEntries, cfg.LogRetainEntries = 1_000_000, 1_000_000
		cfg.SnapshotEveryBytes, cfg.LogRetainBytes, cfg.LogLagMaxBytes = 16<<10, 8<<10, lagMax
		cfg.TrimInterval = 100 * time.Millisecond
		id, applied := cfg.ID, cfg.Hooks.EntryApplied
		cfg.Hooks.EntryApplied = func(index uint64, commands int) {
			stall.pass(id)
			applied(index, commands)
		}
		cfg.Transport = heldPushes{Transport: cfg.Transport, held: func() bool { return stall.holds(id) }}
	})
	leader, _ := c.leader()
	mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: "B-1", Name: "Bo"}, nil), 201)
	stalled := c.followers()[0]
	stall.close(stalled.id)
	t.Cleanup(stall.open) // before the nodes stop, should the test fail

	var written int
	for i := range 200 {
		batch := wire.Batch{}
		for j := range 12 {
			batch.Commands = append(batch.Commands, wire.Command{Op: "deposit", Account: "B-1", Amount: 1, Key: fmt.Sprintf("b%d-%d", i, j)})
		}
		mustOK(t, call(t, leader, "POST", "/v1/batch", batch, nil), 200)
		written += 12
	}
	if held := logBytesInZooKeeper(t, c); held > lagMax {
		// the leader trims every 100 ms; give it a few rounds
		zktest.Eventually(t, 10*time.Second, "ZooKeeper's log within the byte limits", func() bool {
			return logBytesInZooKeeper(t, c) <= lagMax
		})
	}
	cl := decode[wire.Cluster](t, call(t, leader, "GET", "/v1/cluster", nil, nil))
	if cl.TrimmedBelow <= 2 {
		t.Fatalf("the log was not trimmed: %+v", cl)
	}

	stall.open()
	d := c.converged()
	if got := stalled.n.Status().SnapshotIndex; got < cl.TrimmedBelow-1 {
		t.Fatalf("the stalled node's newest snapshot is at %d, below the trim point %d", got, cl.TrimmedBelow)
	}
	r := call(t, stalled, "GET", fmt.Sprintf("/v1/accounts/B-1?min_index=%d", d.Index), nil, nil)
	if a := decode[wire.Account](t, r); a.Balance != uint64(written) {
		t.Fatalf("B-1 on the stalled node: %+v, want balance %d", a, written)
	}
}

// logBytesInZooKeeper adds up the data of every log entry in ZooKeeper.
func logBytesInZooKeeper(t *testing.T, c *cluster) int {
	conn := c.ens.Super(t)
	ops := path.Join(c.root, "operations")
	segs, _, err := conn.Children(ops)
	if err != nil {
		t.Fatal(err)
	}
	var sum int
	for _, s := range segs {
		entries, _, err := conn.Children(path.Join(ops, s))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			_, st, err := conn.Exists(path.Join(ops, s, e))
			if err != nil {
				t.Fatal(err)
			}
			if st != nil {
				sum += int(st.DataLength)
			}
		}
	}
	return sum
}

// gate holds one node's replica loop until opened.
type gate struct {
	mu   sync.Mutex
	id   string
	shut chan struct{} // closed to let it go
}

func (g *gate) close(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.id, g.shut = id, make(chan struct{})
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut != nil {
		close(g.shut)
	}
	g.id, g.shut = "", nil
}

// holds reports whether id is held now.
func (g *gate) holds(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.shut != nil && g.id == id
}

func (g *gate) pass(id string) {
	g.mu.Lock()
	wait := g.shut
	if id != g.id {
		wait = nil
	}
	g.mu.Unlock()
	if wait != nil {
		<-wait
	}
}

// heldPushes drops the entries the leader pushes while held says so.
type heldPushes struct {
	node.Transport
	held func() bool
}

func (h heldPushes) Entries(ctx context.Context, addr string, deliver func(*entry.Envelope)) error {
	return h.Transport.Entries(ctx, addr, func(e *entry.Envelope) {
		if !h.held() {
			deliver(e)
		}
	})
}
