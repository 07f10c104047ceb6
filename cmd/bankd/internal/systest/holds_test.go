package systest

import (
	"fmt"
	"testing"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// TestHoldsThroughTheAPI: a customer reserves money of its account
// through a follower, which then has less available (and the same
// balance); the customer of the other account reads the hold but may
// not capture it; a teller captures part of it on the leader; the
// refusals have their codes on every node; a batch creates and voids;
// and every node ends with the same state, nothing held.
func TestHoldsThroughTheAPI(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 1), 2, nil)
	leader, _ := c.leader()
	follower := c.followers()[0]
	for _, acct := range []string{"A", "B"} {
		mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: acct, Name: acct, Balance: 100}, nil), 201)
	}
	ada, _ := c.newToken(leader, "ada", "customer", "A")
	bob, _ := c.newToken(leader, "bob", "customer", "B")
	tess, _ := c.newToken(leader, "tess", "teller")
	c.converged() // the follower knows the tokens

	r := c.withToken(follower, ada, "POST", "/v1/holds", wire.CreateHold{From: "A", To: "B", Amount: 60})
	mustOK(t, r, 201)
	created := decode[wire.HoldResult](t, r)
	h := created.Hold
	if h.ID == 0 || h.Status != "open" || h.Amount != 60 || created.From == nil || created.From.Held != 60 || created.From.Available != 40 || created.From.Balance != 100 || created.To != nil {
		t.Fatalf("a customer's hold through a follower: %s", r)
	}
	if expiry := time.UnixMilli(h.ExpiresMs); expiry.Before(time.Now().Add(wire.DefaultHoldExpiryMs*time.Millisecond - time.Minute)) {
		t.Fatalf("the default expiry is %v, want about 7 days from now", expiry)
	}
	holdPath := fmt.Sprintf("/v1/holds/%d", h.ID)
	if r := c.withToken(follower, ada, "POST", "/v1/accounts/A/withdraw", wire.Amount{Amount: 50}); r.status != 409 || r.problem().Code != "insufficient_funds" {
		t.Fatalf("a withdrawal of more than is available: %s", r)
	}
	if got := decode[wire.Hold](t, c.withToken(follower, bob, "GET", holdPath, nil)); got.ID != h.ID {
		t.Fatalf("the counterparty's customer reads %+v", got)
	}
	for _, path := range []string{holdPath + "/capture", holdPath + "/void"} {
		if r := c.withToken(follower, bob, "POST", path, nil); r.status != 403 {
			t.Fatalf("the counterparty's customer on %s: %s, want 403", path, r)
		}
	}
	r = c.withToken(leader, tess, "POST", holdPath+"/capture", wire.Amount{Amount: 25})
	mustOK(t, r, 200)
	captured := decode[wire.HoldResult](t, r)
	if captured.Hold.Status != "captured" || captured.Hold.Captured != 25 || captured.From.Balance != 75 || captured.From.Held != 0 || captured.To.Balance != 125 {
		t.Fatalf("a teller's capture: %s", r)
	}
	d := c.converged()
	for _, tn := range []*testNode{leader, follower} {
		for _, step := range []struct {
			path string
			body any
			code string
		}{
			{holdPath + "/capture", nil, "hold_closed"},
			{holdPath + "/void", nil, "hold_closed"},
			{"/v1/holds/999/void", nil, "hold_not_found"},
			{"/v1/holds/0/void", nil, "invalid_hold"},
			{"/v1/holds", wire.CreateHold{From: "A", To: "B", Amount: 76}, "insufficient_funds"},
			{"/v1/holds", wire.CreateHold{From: "A", To: "A", Amount: 1}, "same_account"},
			{"/v1/holds", wire.CreateHold{From: "A", To: "B", Amount: 1, ExpiresInMs: 91 * 24 * 3600 * 1000}, "invalid_hold"},
		} {
			if r := c.withToken(tn, tess, "POST", step.path, step.body); r.status/100 != 4 || r.problem().Code != step.code {
				t.Errorf("POST %s on %s: %s, want %s", step.path, tn.id, r, step.code)
			}
		}
		list := decode[wire.HoldList](t, call(t, tn, "GET", fmt.Sprintf("/v1/accounts/B/holds?min_index=%d", d.Index), nil, nil))
		if len(list.Holds) != 1 || list.Holds[0].Status != "captured" {
			t.Errorf("B's holds on %s: %+v", tn.id, list)
		}
	}
	r = c.withToken(follower, tess, "POST", "/v1/batch", wire.Batch{Commands: []wire.Command{
		{Op: "create_hold", From: "A", To: "B", Amount: 5, ExpiresInMs: 60_000}, {Op: "void_hold", Hold: h.ID + 1},
	}})
	mustOK(t, r, 200)
	if res := decode[wire.BatchResult](t, r).Results; res[0].Hold == nil || res[0].Hold.ID != h.ID+1 || res[1].Code != "ok" || res[1].Hold.Status != "voided" {
		t.Fatalf("a batch that creates and voids: %s", r)
	}
	d = c.converged()
	if d.TotalBalance != 200 || d.TotalHeld != 0 {
		t.Fatalf("the digest after the holds: %+v", d)
	}
	keys := decode[wire.Cluster](t, call(t, follower, "GET", "/v1/cluster", nil, nil)).Keys
	if keys.Held == 0 || keys.OldestIndex == 0 || keys.OldestTime == "" || keys.WindowEntries != 100_000 || keys.WindowKeys != 500_000 {
		t.Fatalf("the cluster's account of the keys it remembers: %+v", keys)
	}
}

// TestAHoldExpiresUnderALeaderAnHourBehind: a hold is created under a
// leader whose clock is right; it fails over, on an idle bank, to one
// whose clock is an hour behind. The hold still expires about when it
// should (the log's time follows ZooKeeper's, and the leader appends an
// entry for it with no write to carry it), at the same index on every
// node, and cannot be captured after.
func TestAHoldExpiresUnderALeaderAnHourBehind(t *testing.T) {
	const slow = "n2"
	c := newCluster(t, zktest.Shared(t, 1), 2, func(cfg *node.Config) {
		if cfg.ID == slow {
			cfg.Clock = func() time.Time { return time.Now().Add(-time.Hour) }
		}
	})
	leader, _ := c.leader()
	if leader.id == slow { // hand the lead to the node whose clock is right
		c.stop(leader)
		c.start(leader)
		c.waitReady(leader)
		leader, _ = c.leader()
	}
	for _, acct := range []string{"A", "B"} {
		mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: acct, Name: acct, Balance: 100}, nil), 201)
	}
	const ttl = 4 * time.Second
	r := call(t, leader, "POST", "/v1/holds", wire.CreateHold{From: "A", To: "B", Amount: 30, ExpiresInMs: uint64(ttl.Milliseconds())}, nil)
	mustOK(t, r, 201)
	h := decode[wire.HoldResult](t, r).Hold
	c.converged()
	c.stop(leader) // nothing is written from here on
	var next *testNode
	zktest.Eventually(t, 20*time.Second, "the slow node leads", func() bool {
		l, ok := c.leader()
		next = l
		return ok && l.id == slow
	})
	holdPath := fmt.Sprintf("/v1/holds/%d", h.ID)
	zktest.Eventually(t, 20*time.Second, "the hold expires under the slow leader", func() bool {
		got := decode[wire.Hold](t, call(t, next, "GET", holdPath, nil, nil))
		return got.Status == "expired"
	})
	if late := time.Since(time.UnixMilli(h.ExpiresMs)); late > 10*time.Second {
		t.Errorf("the hold expired %v after its time", late)
	}
	c.start(leader)
	c.waitReady(leader)
	d := c.converged()
	var closedAt uint64
	for _, tn := range c.nodes {
		got := decode[wire.Hold](t, call(t, tn, "GET", fmt.Sprintf("%s?min_index=%d", holdPath, d.Index), nil, nil))
		a := decode[wire.Account](t, call(t, tn, "GET", "/v1/accounts/A", nil, nil))
		if got.Status != "expired" || got.ClosedIndex <= h.CreatedIndex || a.Held != 0 || a.Available != 100 {
			t.Fatalf("on %s: hold %+v, A %+v", tn.id, got, a)
		}
		if closedAt != 0 && got.ClosedIndex != closedAt {
			t.Fatalf("the hold closed at %d on one node, %d on another", closedAt, got.ClosedIndex)
		}
		closedAt = got.ClosedIndex
	}
	if r := call(t, next, "POST", holdPath+"/capture", nil, nil); r.status != 409 || r.problem().Code != "hold_expired" {
		t.Fatalf("a capture after the expiry: %s, want 409 hold_expired", r)
	}
}
