package systest

import (
	"fmt"
	"testing"

	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// TestFollowersApplyTheLeadersPushes: once its stream from the leader is
// up, a follower cut off from ZooKeeper still applies every entry, which
// it can only have from the leader's pushes; after the leader crashes, the
// same holds with the new leader's.
func TestFollowersApplyTheLeadersPushes(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 1), 3, nil)
	leader, _ := c.leader()
	mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: "P-1", Name: "pushed"}, nil), 201)
	checkPushes(t, c, leader, "first")
	crash(c, leader)
	zktest.Eventually(t, 30*sessionTimeout, "a new leader", func() bool { l, ok := c.leader(); return ok && l != leader })
	next, _ := c.leader()
	checkPushes(t, c, next, "second")
}

// checkPushes deposits through the leader until every follower took an
// entry from its stream, then cuts one follower off ZooKeeper and checks
// that it applies each of the next deposits from the pushes.
func checkPushes(t *testing.T, c *cluster, leader *testNode, tag string) {
	t.Helper()
	deposit := func(key string) {
		mustOK(t, call(t, leader, "POST", "/v1/accounts/P-1/deposit", wire.Amount{Amount: 1}, map[string]string{wire.HeaderIdempotencyKey: key}), 200)
	}
	pushedNow := func() map[string]uint64 {
		c.converged()
		m := map[string]uint64{}
		for _, f := range c.followers() {
			m[f.id] = f.n.Status().Pushed
		}
		return m
	}
	before, warmups := pushedNow(), 0
	zktest.Eventually(t, 10*sessionTimeout, "streams from the leader", func() bool {
		deposit(fmt.Sprintf("%s-warmup-%d", tag, warmups))
		warmups++
		for id, n := range pushedNow() {
			if n == before[id] {
				return false
			}
		}
		return true
	})
	f := c.followers()[0]
	f.cutter.Cut()
	defer f.cutter.Resume()
	pushed := f.n.Status().Pushed
	const deposits = 40
	for i := range deposits {
		deposit(fmt.Sprintf("%s-%d", tag, i))
	}
	head := leader.n.Applied()
	zktest.Eventually(t, 10*sessionTimeout, "the follower cut off ZooKeeper applies the pushed entries", func() bool {
		return f.n.Applied() >= head
	})
	if got := f.n.Status().Pushed - pushed; got < deposits {
		t.Errorf("%s, cut off ZooKeeper, took %d of %d entries from the leader's pushes", f.id, got, deposits)
	}
}
