package node_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// TestARollingUpgradeSwitchesTheBodyVersionOnce: three nodes of an older
// binary (reading body version 1) take writes while each is restarted as
// the new binary; the log switches to version 2 once every expected
// member reads it, at one index, although one of them is down at that
// moment; it comes back and reads the new entries; a binary of the old
// version then refuses to start, saying why. No acknowledged write is
// lost or applied twice.
func TestARollingUpgradeSwitchesTheBodyVersionOnce(t *testing.T) {
	c := newOld(t, engine.BodyV1, "n1", "n2", "n3")
	w := startWorkload(t, c, 3)

	upgrade := func(id string) {
		c.stop(id)
		c.reads = engine.BodyV2
		c.start(id)
		c.waitLeader()
		w.progress(t, 20)
	}
	upgrade("n3")
	c.stop("n3") // expected, reads version 2, and down at the switch
	w.progress(t, 20)
	upgrade("n1")
	if v := c.waitLeader().Status().BodyVersion; v != engine.BodyV1 {
		t.Fatalf("the log switched to %d with n2 still reading 1", v)
	}
	upgrade("n2")
	zktest.Eventually(t, 20*time.Second, "the switch to version 2", func() bool { return c.waitLeader().Status().BodyVersion == engine.BodyV2 })
	w.progress(t, 20)
	since := c.waitLeader().Status().VersionSince
	c.start("n3")
	w.progress(t, 20)
	w.stop(t)

	d := c.converged()
	for _, n := range c.running() {
		if st := n.Status(); st.BodyVersion != engine.BodyV2 || st.VersionSince != since {
			t.Errorf("%s: body version %d since %d, want 2 since %d", n.ID(), st.BodyVersion, st.VersionSince, since)
		}
	}
	w.check(t, c.running()[0], d.Index)

	c.reads = engine.BodyV1
	if _, err := c.tryStart("old"); !errors.Is(err, node.ErrBinaryTooOld) || !strings.Contains(err.Error(), "upgrade") {
		t.Fatalf("an old binary started on a version 2 log: %v", err)
	}
}

// newOld starts nodes that read body versions up to reads.
func newOld(t *testing.T, reads uint32, ids ...string) *inmem {
	c := newInmem(t)
	c.reads = reads
	for _, id := range ids {
		c.start(id)
	}
	c.waitLeader()
	return c
}

// workload deposits into one account per worker through random nodes,
// each deposit with its own key, retried until acknowledged.
type workload struct {
	c      *inmem
	acked  []atomic.Int64
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errs   chan error
}

func startWorkload(t *testing.T, c *inmem, workers int) *workload {
	w := &workload{c: c, acked: make([]atomic.Int64, workers), errs: make(chan error, workers)}
	leader := c.waitLeader()
	for i := range workers {
		write(t, leader, engine.Command{Op: engine.OpCreateAccount, Key: fmt.Sprint("open-", i), Account: fmt.Sprint("W-", i), Name: "worker"})
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	for i := range workers {
		w.wg.Go(func() { w.run(ctx, i) })
	}
	return w
}

func (w *workload) run(ctx context.Context, i int) {
	rng := rand.New(rand.NewPCG(uint64(i), 7))
	for op := 0; ctx.Err() == nil; op++ {
		cmd := engine.Command{Op: engine.OpDeposit, Key: fmt.Sprintf("w%d-%d", i, op), Account: fmt.Sprint("W-", i), Amount: 1}
		for ctx.Err() == nil {
			nodes := w.c.running()
			if len(nodes) == 0 {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			wctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, out, err := nodes[rng.IntN(len(nodes))].Write(wctx, []engine.Command{cmd})
			cancel()
			if err == nil {
				if out[0].Code != engine.CodeOK {
					w.errs <- fmt.Errorf("deposit %s: %s", cmd.Key, out[0].Code)
					return
				}
				w.acked[i].Add(1)
				break
			}
		}
	}
}

// progress waits until the workers were acknowledged n more deposits.
func (w *workload) progress(t *testing.T, n int64) {
	t.Helper()
	start := w.total()
	zktest.Eventually(t, 60*time.Second, fmt.Sprintf("%d more acknowledged deposits", n), func() bool { return w.total() >= start+n })
}

func (w *workload) total() int64 {
	var sum int64
	for i := range w.acked {
		sum += w.acked[i].Load()
	}
	return sum
}

func (w *workload) stop(t *testing.T) {
	w.cancel()
	w.wg.Wait()
	close(w.errs)
	for err := range w.errs {
		t.Error(err)
	}
}

// check: each account holds at least what was acknowledged (an
// unacknowledged last deposit may have applied) and at most one more.
func (w *workload) check(t *testing.T, n *node.Node, index uint64) {
	t.Helper()
	if err := n.WaitApplied(context.Background(), index); err != nil {
		t.Fatal(err)
	}
	for i := range w.acked {
		a, ok, _ := n.Get(fmt.Sprint("W-", i))
		if acked := uint64(w.acked[i].Load()); !ok || a.Balance < acked || a.Balance > acked+1 {
			t.Errorf("W-%d holds %d after %d acknowledged deposits", i, a.Balance, acked)
		}
	}
}
