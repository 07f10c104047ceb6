package systest

import (
	"fmt"
	"testing"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// TestAFrozenAccountThroughTheAPI: a teller freezes an account through a
// follower (forwarded; the answer says frozen); every movement in or out
// of it, and its closing, is 409 account_frozen on any node and changes
// no balance; it still reads and lists as frozen; unfrozen, money moves.
func TestAFrozenAccountThroughTheAPI(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 1), 2, nil)
	leader, _ := c.leader()
	follower := c.followers()[0]
	for _, acct := range []string{"A", "B"} {
		mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: acct, Name: acct, Balance: 100}, nil), 201)
	}
	tess, _ := c.newToken(leader, "tess", "teller")
	c.converged() // the follower knows the token
	r := c.withToken(follower, tess, "POST", "/v1/accounts/A/freeze", nil)
	mustOK(t, r, 200)
	if a := decode[wire.Account](t, r); !a.Frozen || a.Balance != 100 {
		t.Fatalf("freeze through a follower answered %+v", a)
	}
	for _, tn := range []*testNode{leader, follower} {
		for _, step := range []struct{ method, path string }{
			{"POST", "/v1/accounts/A/deposit"}, {"POST", "/v1/accounts/A/withdraw"}, {"DELETE", "/v1/accounts/A"},
		} {
			var body any
			if step.method == "POST" {
				body = wire.Amount{Amount: 1}
			}
			if r := c.withToken(tn, tess, step.method, step.path, body); r.status != 409 || r.problem().Code != "account_frozen" {
				t.Errorf("%s %s on %s: %s, want 409 account_frozen", step.method, step.path, tn.id, r)
			}
		}
		for _, tr := range []wire.Transfer{{From: "A", To: "B", Amount: 1}, {From: "B", To: "A", Amount: 1}} {
			if r := c.withToken(tn, tess, "POST", "/v1/transfers", tr); r.status != 409 || r.problem().Code != "account_frozen" {
				t.Errorf("transfer %s to %s on %s: %s, want 409 account_frozen", tr.From, tr.To, tn.id, r)
			}
		}
	}
	d := c.converged()
	for _, tn := range []*testNode{leader, follower} {
		a := decode[wire.Account](t, call(t, tn, "GET", fmt.Sprintf("/v1/accounts/A?min_index=%d", d.Index), nil, nil))
		list := decode[wire.AccountList](t, call(t, tn, "GET", "/v1/accounts", nil, nil))
		if !a.Frozen || a.Balance != 100 || len(list.Accounts) != 2 || !list.Accounts[0].Frozen || list.Accounts[1].Frozen {
			t.Fatalf("on %s: A %+v, list %+v", tn.id, a, list.Accounts)
		}
	}
	mustOK(t, c.withToken(leader, tess, "POST", "/v1/accounts/A/unfreeze", nil), 200)
	r = c.withToken(follower, tess, "POST", "/v1/transfers", wire.Transfer{From: "A", To: "B", Amount: 30})
	mustOK(t, r, 200)
	if tr := decode[wire.TransferResult](t, r); tr.From.Balance != 70 || tr.From.Frozen || tr.To.Balance != 130 {
		t.Fatalf("a transfer after unfreezing: %+v", tr)
	}
}

// TestARollingUpgradeBringsFrozenAccounts: a sealed cluster of binaries
// that read body version 3 cannot freeze (503 not_ready: the log does
// not carry it yet); restarted one at a time with this binary, the log
// switches to version 4 once, and a freeze then lands on every node.
func TestARollingUpgradeBringsFrozenAccounts(t *testing.T) {
	reads := uint32(engine.BodyV3)
	c := newCluster(t, zktest.Shared(t, 1), 3, func(cfg *node.Config) { cfg.BodyVersionMax = reads })
	leader, _ := c.leader()
	mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: "A", Name: "A", Balance: 10}, nil), 201)
	if r := call(t, leader, "POST", "/v1/accounts/A/freeze", nil, nil); r.status != 503 || r.problem().Code != "not_ready" {
		t.Fatalf("freeze on a version 3 log: %s, want 503 not_ready", r)
	}
	reads = engine.BodyV4
	for _, tn := range c.nodes {
		c.stop(tn)
		c.start(tn)
		c.waitReady(tn)
	}
	tries := 0
	zktest.Eventually(t, 20*time.Second, "the switch to version 4", func() bool { // the next entry switches
		l, ok := c.leader()
		tries++
		return ok && call(t, l, "POST", "/v1/accounts/A/deposit", wire.Amount{Amount: 1}, map[string]string{wire.HeaderIdempotencyKey: fmt.Sprint("up-", tries)}).status == 200 &&
			l.n.Status().BodyVersion == engine.BodyV4
	})
	leader, _ = c.leader()
	mustOK(t, call(t, leader, "POST", "/v1/accounts/A/freeze", nil, nil), 200)
	d := c.converged()
	for _, tn := range c.nodes {
		st := tn.n.Status()
		a := decode[wire.Account](t, call(t, tn, "GET", fmt.Sprintf("/v1/accounts/A?min_index=%d", d.Index), nil, nil))
		if st.BodyVersion != engine.BodyV4 || !a.Frozen {
			t.Fatalf("%s: body version %d since %d, A %+v", tn.id, st.BodyVersion, st.VersionSince, a)
		}
	}
}
