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
	checkLateHistory(t, leader, away, d.Index)
	// An audit of its data dir, which starts at the installed snapshot,
	// gives the cluster's state hash.
	c.stop(away)
	rep, err := audit.Replay(away.dir, audit.Options{Trust: c.trust})
	if err != nil || rep.From == 0 || rep.Index != d.Index || rep.StateHash.String() != d.StateHash || rep.Verified != rep.Entries {
		t.Fatalf("audit of the restarted node: %+v %v; cluster digest %+v", rep, err, d)
	}
}

// checkLateHistory: a node that installed a peer's snapshot holds history
// from past it, says so (410 with history_from), and answers from there
// as a node that holds it all.
func checkLateHistory(t *testing.T, whole, late *testNode, index uint64) {
	t.Helper()
	q := fmt.Sprintf("?min_index=%d&limit=1000", index)
	all := decode[wire.Statement](t, call(t, whole, "GET", "/v1/accounts/T-1/history"+q, nil, nil))
	if len(all.Lines) != 151 || all.HistoryFrom != 1 || all.Lines[150].Balance != 300 {
		t.Fatalf("the whole statement: %d lines from %d", len(all.Lines), all.HistoryFrom)
	}
	r := call(t, late, "GET", "/v1/accounts/T-1/history"+q, nil, nil)
	from := r.problem().HistoryFrom
	if r.status != 410 || r.problem().Code != wire.CodeHistoryGone || from <= 1 {
		t.Fatalf("a statement from a node that installed a snapshot: %s", r)
	}
	if r := call(t, late, "GET", "/v1/events?from=0", nil, nil); r.status != 410 || r.problem().HistoryFrom != from {
		t.Fatalf("a feed from 0 on a node whose history starts at %d: %s", from, r)
	}
	if cl := decode[wire.Cluster](t, call(t, late, "GET", "/v1/cluster", nil, nil)); cl.History.From != from || cl.History.DiskBytes == 0 {
		t.Fatalf("/v1/cluster on a node whose history starts at %d: %+v", from, cl.History)
	}
	after := fmt.Sprint(from - 1)
	part := decode[wire.Statement](t, call(t, late, "GET", "/v1/accounts/T-1/history"+q+"&after="+after, nil, nil))
	same := decode[wire.Statement](t, call(t, whole, "GET", "/v1/accounts/T-1/history"+q+"&after="+after, nil, nil))
	if len(part.Lines) == 0 || fmt.Sprint(part.Lines) != fmt.Sprint(same.Lines) || part.HistoryFrom != from {
		t.Fatalf("after %s the late node has %d lines, the whole one %d", after, len(part.Lines), len(same.Lines))
	}
}
