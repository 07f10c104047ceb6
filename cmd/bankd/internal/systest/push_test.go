package systest

import (
	"fmt"
	"testing"

	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// TestFollowersApplyTheLeadersPushes: once their streams from the leader
// are up, followers take the entries it pushes instead of reading them
// back from ZooKeeper; after the leader crashes, they take the new
// leader's pushes.
func TestFollowersApplyTheLeadersPushes(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 1), 3, nil)
	leader, _ := c.leader()
	mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: "P-1", Name: "pushed"}, nil), 201)
	checkPushes(t, c, leader, "first")
	crash(c, leader)
	eventually(t, 30*sessionTimeout, "a new leader", func() bool { l, ok := c.leader(); return ok && l != leader })
	next, _ := c.leader()
	checkPushes(t, c, next, "second")
}

// checkPushes deposits through the leader until every follower took an
// entry from its stream, then checks that they take most of the next
// entries from it.
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
	eventually(t, 10*sessionTimeout, "streams from the leader", func() bool {
		deposit(fmt.Sprintf("%s-warmup-%d", tag, warmups))
		warmups++
		for id, n := range pushedNow() {
			if n == before[id] {
				return false
			}
		}
		return true
	})
	before = pushedNow()
	const deposits = 40
	for i := range deposits {
		deposit(fmt.Sprintf("%s-%d", tag, i))
	}
	for id, n := range pushedNow() {
		if got := n - before[id]; got < deposits*3/4 {
			t.Errorf("%s took %d of %d entries from the leader's pushes", id, got, deposits)
		}
	}
}
