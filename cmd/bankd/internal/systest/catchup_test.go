package systest

import (
	"fmt"
	"testing"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/internal/audit"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// TestRestartAfterTrimInstallsPeerSnapshot stops a node, writes until the
// leader has trimmed the log past it, and restarts it: it must fetch a
// peer's snapshot, verify and install it, and converge.
func TestRestartAfterTrimInstallsPeerSnapshot(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 1), 3, func(cfg *node.Config) {
		cfg.SnapshotEveryEntries, cfg.LogRetainEntries, cfg.SegmentSize = 20, 5, 10
		cfg.TrimInterval = 100 * time.Millisecond
	})
	leader, _ := c.leader()
	mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: "T-1", Name: "Tess"}, nil), 201)
	away := c.followers()[0]
	stoppedAt := away.n.Applied()
	c.stop(away)

	for i := range 150 {
		mustOK(t, call(t, leader, "POST", "/v1/accounts/T-1/deposit", wire.Amount{Amount: 2}, map[string]string{wire.HeaderIdempotencyKey: fmt.Sprint("t", i)}), 200)
	}
	zktest.Eventually(t, 20*time.Second, "the log trimmed past the stopped node", func() bool {
		cl := decode[wire.Cluster](t, call(t, leader, "GET", "/v1/cluster", nil, nil))
		return cl.TrimmedBelow > stoppedAt+1
	})

	c.start(away)
	c.waitReady(away)
	d := c.converged()
	if got := away.n.Status().SnapshotIndex; got <= stoppedAt {
		t.Fatalf("restarted node's newest snapshot is at %d; it stopped at %d, so it did not install one", got, stoppedAt)
	}
	r := call(t, away, "GET", fmt.Sprintf("/v1/accounts/T-1?min_index=%d", d.Index), nil, nil)
	if a := decode[wire.Account](t, r); a.Balance != 300 {
		t.Fatalf("T-1 on the restarted node: %+v", a)
	}
	// An audit of its data dir, which starts at the installed snapshot,
	// gives the cluster's state hash.
	c.stop(away)
	rep, err := audit.Replay(away.dir, audit.Options{Trust: c.trust})
	if err != nil || rep.From == 0 || rep.Index != d.Index || rep.StateHash.String() != d.StateHash || rep.Verified != rep.Entries {
		t.Fatalf("audit of the restarted node: %+v %v; cluster digest %+v", rep, err, d)
	}
}
