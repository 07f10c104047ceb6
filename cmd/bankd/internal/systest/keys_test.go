package systest

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// TestAKeyOutlivesAMillionCommands: a deposit's key, retried after a
// million later commands (laterCommands), answers with its first outcome
// through the leader, a follower, and a node that lost its data dir in
// between and so installed a peer's snapshot, and with it the peer's key
// store (its own never held the key); the retry moves nothing on any
// node, so every state hash agrees. The window holds windowKeys keys, so
// the record comes from each node's key store on disk. Under the race
// detector, which makes the million take ten minutes, it is 20,000
// commands past a window of 1,000 keys; `make test` also runs the
// million without it (make long).
func TestAKeyOutlivesAMillionCommands(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 1), 3, func(cfg *node.Config) {
		cfg.Engine = engine.DefaultConfig()
		cfg.Engine.KeyWindowMax, cfg.Engine.KeyWindowEntries = windowKeys, 1_000
		cfg.BatchCommandsMax = entryCommands
		cfg.SnapshotEveryEntries, cfg.LogRetainEntries = 5, 2
		cfg.TrimInterval = 100 * time.Millisecond
	})
	leader, _ := c.leader()
	follower, installer := c.followers()[0], c.followers()[1]
	mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: "M-1", Name: "Mo"}, nil), 201)
	first := wire.Command{Op: "deposit", Account: "M-1", Amount: 7, Key: "the-first-deposit"}
	firstAt := decode[wire.BatchResult](t, call(t, leader, "POST", "/v1/batch", wire.Batch{Commands: []wire.Command{first}}, nil)).Index
	c.stop(installer)
	if err := os.RemoveAll(installer.dir); err != nil {
		t.Fatal(err)
	}

	writeDeposits(t, leader, "M-1", laterCommands)
	retry := func(tn *testNode) {
		t.Helper()
		res := decode[wire.BatchResult](t, call(t, tn, "POST", "/v1/batch", wire.Batch{Commands: []wire.Command{first}}, nil)).Results[0]
		if res.Code != "ok" || !res.Replayed || len(res.Accounts) != 1 || res.Accounts[0].Balance != 7 {
			t.Fatalf("the retry through %s, %d commands later: %+v, want the first outcome (balance 7)", tn.id, laterCommands, res)
		}
	}
	retry(leader)
	retry(follower)
	cl := decode[wire.Cluster](t, call(t, leader, "GET", "/v1/cluster", nil, nil))
	if cl.TrimmedBelow <= 2 {
		t.Fatalf("the log was not trimmed: a node that lost its data dir need not install a snapshot: %+v", cl)
	}
	if cl.Keys.OldestIndex <= firstAt || cl.Keys.RetainMs != 24*3600*1000 || cl.Keys.DiskBytes == 0 {
		t.Fatalf("the key is still in the window, or keys are not remembered by time: %+v", cl.Keys)
	}

	c.start(installer)
	c.waitReady(installer)
	if got := installer.n.Status().SnapshotIndex; got < cl.TrimmedBelow-1 {
		t.Fatalf("the node that lost its data dir starts from a snapshot at %d, below the trim point %d", got, cl.TrimmedBelow)
	}
	retry(installer)
	d := c.converged()
	r := call(t, installer, "GET", fmt.Sprintf("/v1/accounts/M-1?min_index=%d", d.Index), nil, nil)
	if a := decode[wire.Account](t, r); a.Balance != 7+laterCommands {
		t.Fatalf("M-1 on the node that installed a snapshot: %+v, want %d", a, 7+laterCommands)
	}
}

// writeDeposits deposits 1 into account n times, each under its own key,
// in batches of entryCommands from a few clients at once.
func writeDeposits(t *testing.T, tn *testNode, account string, n int) {
	t.Helper()
	const batch, clients = entryCommands, 4
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for w := range clients {
		wg.Go(func() {
			for i := w * batch; i < n; i += clients * batch {
				b := wire.Batch{Commands: make([]wire.Command, 0, batch)}
				for j := i; j < min(i+batch, n); j++ {
					b.Commands = append(b.Commands, wire.Command{Op: "deposit", Account: account, Amount: 1, Key: fmt.Sprintf("later-%d", j)})
				}
				r, err := tryCall(tn, "POST", "/v1/batch", b, nil)
				if err == nil && r.status != 200 {
					err = fmt.Errorf("status %d: %s", r.status, r.body)
				}
				if err != nil {
					errs <- fmt.Errorf("batch at %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
