package systest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// newToken makes a token through the admin's certificate and returns its
// secret and id.
func (c *cluster) newToken(tn *testNode, name, role string, accounts ...string) (string, uint64) {
	c.t.Helper()
	r := call(c.t, tn, "POST", "/v1/admin/tokens", wire.TokenRequest{Name: name, Role: role, Accounts: accounts}, nil)
	mustOK(c.t, r, 201)
	tok := decode[wire.Token](c.t, r)
	if !strings.HasPrefix(tok.Token, "zkb_") || tok.ID == 0 || tok.Role != role {
		c.t.Fatalf("created %+v", tok)
	}
	return tok.Token, tok.ID
}

// anonymous is a client that trusts the cluster and presents nothing.
func (c *cluster) anonymous() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: c.material("", "").Client(nil)}}
}

// withToken sends a request to tn with a bearer token.
func (c *cluster) withToken(tn *testNode, token, method, path string, body any) response {
	c.t.Helper()
	r, err := callAs(c.anonymous(), tn, method, path, body, map[string]string{"Authorization": "Bearer " + token})
	if err != nil {
		c.t.Fatalf("%s %s on %s: %v", method, path, tn.id, err)
	}
	return r
}

// TestEveryRoleOnEveryRoute: the matrix of roles and routes, batch ops
// included, on the leader and on a follower; what a role may not do is
// 403 forbidden and changes nothing.
func TestEveryRoleOnEveryRoute(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 1), 2, nil)
	leader, _ := c.leader()
	follower := c.followers()[0]
	for _, acct := range []string{"A", "B"} {
		mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: acct, Name: acct, Balance: 1_000_000}, nil), 201)
	}
	tokens := map[string]string{}
	for _, role := range []string{"admin", "teller", "auditor"} {
		tokens[role], _ = c.newToken(leader, role+"-1", role)
	}
	tokens["customer"], _ = c.newToken(leader, "ada", "customer", "A")

	type route struct {
		name, method, path string
		body               func(role string) any
		allowed            string // the roles that may, space-separated
	}
	n := 0
	fresh := func() string { n++; return fmt.Sprintf("F-%d", n) }
	cmd := func(op, acct string) wire.Command { return wire.Command{Op: op, Account: acct, Amount: 1} }
	routes := []route{
		{"create", "POST", "/v1/accounts", func(string) any { return wire.CreateAccount{Account: fresh(), Name: "New"} }, "admin teller"},
		{"get own", "GET", "/v1/accounts/A", nil, "admin teller auditor customer"},
		{"get other", "GET", "/v1/accounts/B", nil, "admin teller auditor"},
		{"get missing", "GET", "/v1/accounts/NOPE", nil, ""}, // 404 for those who may read it all, 403 for a customer
		{"list", "GET", "/v1/accounts", nil, "admin teller auditor customer"},
		{"deposit", "POST", "/v1/accounts/A/deposit", func(string) any { return wire.Amount{Amount: 1} }, "admin teller"},
		{"withdraw own", "POST", "/v1/accounts/A/withdraw", func(string) any { return wire.Amount{Amount: 1} }, "admin teller customer"},
		{"withdraw other", "POST", "/v1/accounts/B/withdraw", func(string) any { return wire.Amount{Amount: 1} }, "admin teller"},
		{"rename", "POST", "/v1/accounts/A/rename", func(string) any { return wire.Rename{Name: "A"} }, "admin teller"},
		{"transfer out", "POST", "/v1/transfers", func(string) any { return wire.Transfer{From: "A", To: "B", Amount: 1} }, "admin teller customer"},
		{"transfer in", "POST", "/v1/transfers", func(string) any { return wire.Transfer{From: "B", To: "A", Amount: 1} }, "admin teller"},
		{"batch deposit", "POST", "/v1/batch", func(string) any { return wire.Batch{Commands: []wire.Command{cmd("deposit", "A")}} }, "admin teller"},
		{"batch withdraw own", "POST", "/v1/batch", func(string) any { return wire.Batch{Commands: []wire.Command{cmd("withdraw", "A")}} }, "admin teller customer"},
		{"batch with one forbidden", "POST", "/v1/batch", func(string) any {
			return wire.Batch{Commands: []wire.Command{cmd("withdraw", "A"), cmd("withdraw", "B")}}
		}, "admin teller"},
		{"batch create", "POST", "/v1/batch", func(string) any {
			return wire.Batch{Commands: []wire.Command{{Op: "create_account", Account: fresh(), Name: "N"}}}
		}, "admin teller"},
		{"cluster", "GET", "/v1/cluster", nil, "admin teller auditor"},
		{"digest", "GET", "/v1/digest", nil, "admin teller auditor"},
		{"list tokens", "GET", "/v1/admin/tokens", nil, "admin auditor"},
		{"create token", "POST", "/v1/admin/tokens", func(role string) any {
			return wire.TokenRequest{Name: "by-" + role + fresh(), Role: "teller"}
		}, "admin"},
		{"revoke certificate", "POST", "/v1/admin/revocations", func(string) any { return wire.Revocation{Serial: "7" + fmt.Sprint(n)} }, "admin"},
		{"revocations", "GET", "/v1/admin/revocations", nil, "admin auditor"},
		{"freeze", "POST", "/v1/accounts/B/freeze", nil, "admin teller"}, // unfrozen again next
		{"unfreeze", "POST", "/v1/accounts/B/unfreeze", nil, "admin teller"},
		{"batch freeze", "POST", "/v1/batch", func(string) any {
			return wire.Batch{Commands: []wire.Command{{Op: "freeze_account", Account: "B"}, {Op: "unfreeze_account", Account: "B"}}}
		}, "admin teller"},
		{"hold own", "POST", "/v1/holds", func(string) any { return wire.CreateHold{From: "A", To: "B", Amount: 1} }, "admin teller customer"},
		{"hold other", "POST", "/v1/holds", func(string) any { return wire.CreateHold{From: "B", To: "A", Amount: 1} }, "admin teller"},
		{"get own hold", "GET", "/v1/holds/1", nil, "admin teller auditor customer"}, // the admin's first "hold own", from A
		{"list own holds", "GET", "/v1/accounts/A/holds", nil, "admin teller auditor customer"},
		{"list other holds", "GET", "/v1/accounts/B/holds", nil, "admin teller auditor"},
		{"approvals", "GET", "/v1/approvals", nil, "admin teller auditor"},
		{"set a limit", "POST", "/v1/admin/approval-limits", func(string) any { return wire.ApprovalLimit{Role: "customer", Limit: 0} }, "admin"},
		{"limits", "GET", "/v1/admin/approval-limits", nil, "admin auditor"},
		{"batch hold own", "POST", "/v1/batch", func(string) any {
			return wire.Batch{Commands: []wire.Command{{Op: "create_hold", From: "A", To: "B", Amount: 1}}}
		}, "admin teller customer"},
	}
	for _, tn := range []*testNode{leader, follower} {
		for _, role := range []string{"admin", "teller", "auditor", "customer"} {
			for _, rt := range routes {
				var body any
				if rt.body != nil {
					body = rt.body(role)
				}
				may := strings.Contains(" "+rt.allowed+" ", " "+role+" ")
				var before wire.Digest
				if !may { // a refusal must change nothing
					before = c.converged()
				}
				r := c.withToken(tn, tokens[role], rt.method, rt.path, body)
				switch {
				case rt.name == "get missing":
					want := map[bool]int{true: 403, false: 404}[role == "customer"]
					if r.status != want {
						t.Errorf("%s on %s, %s: %s, want %d", role, tn.id, rt.name, r, want)
					}
				case may && r.status >= 300:
					t.Errorf("%s on %s, %s: %s, want it allowed", role, tn.id, rt.name, r)
				case !may:
					if r.status != 403 || r.problem().Code != "forbidden" {
						t.Errorf("%s on %s, %s: %s, want 403 forbidden", role, tn.id, rt.name, r)
					} else if after := c.converged(); after.StateHash != before.StateHash {
						t.Errorf("%s on %s, %s: refused, yet the state changed", role, tn.id, rt.name)
					}
				}
			}
		}
	}
}

// TestACustomerSeesOnlyItsOwn: a transfer's answer and a batch's results
// show a customer its account, and of the other only its number; a list
// holds only its accounts.
func TestACustomerSeesOnlyItsOwn(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 1), 1, nil)
	tn := c.nodes[0]
	for _, acct := range []string{"A", "B", "C"} {
		mustOK(t, call(t, tn, "POST", "/v1/accounts", wire.CreateAccount{Account: acct, Name: "Secret " + acct, Balance: 500}, nil), 201)
	}
	ada, _ := c.newToken(tn, "ada", "customer", "C", "A")
	r := c.withToken(tn, ada, "POST", "/v1/transfers", wire.Transfer{From: "A", To: "B", Amount: 5})
	mustOK(t, r, 200)
	if strings.Contains(string(r.body), "Secret B") || strings.Contains(string(r.body), "505") || !strings.Contains(string(r.body), `"to":{"account":"B"}`) {
		t.Fatalf("a customer's transfer answer: %s", r)
	}
	r = c.withToken(tn, ada, "POST", "/v1/batch", wire.Batch{Commands: []wire.Command{{Op: "transfer", Account: "A", To: "B", Amount: 5}}})
	mustOK(t, r, 200)
	if strings.Contains(string(r.body), "Secret B") {
		t.Fatalf("a customer's batch answer: %s", r)
	}
	list := decode[wire.AccountList](t, c.withToken(tn, ada, "GET", "/v1/accounts", nil))
	if len(list.Accounts) != 2 || list.Accounts[0].Account != "A" || list.Accounts[1].Account != "C" {
		t.Fatalf("a customer's list: %+v", list)
	}
	if r := c.withToken(tn, ada, "POST", "/v1/transfers", wire.Transfer{From: "B", To: "A", Amount: 1}); r.status != 403 || strings.Contains(string(r.body), "Secret") {
		t.Fatalf("a customer moving money out of another's account: %s", r)
	}
}

// TestAKeyIsEachPrincipalsOwn: two principals' equal keys are two
// commands; neither learns of the other's.
func TestAKeyIsEachPrincipalsOwn(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 1), 1, nil)
	tn := c.nodes[0]
	mustOK(t, call(t, tn, "POST", "/v1/accounts", wire.CreateAccount{Account: "A", Name: "A", Balance: 500}, nil), 201)
	tess, _ := c.newToken(tn, "tess", "teller")
	tom, _ := c.newToken(tn, "tom", "teller")
	send := func(token string, amount uint64) response {
		r, err := callAs(c.anonymous(), tn, "POST", "/v1/accounts/A/deposit", wire.Amount{Amount: amount},
			map[string]string{"Authorization": "Bearer " + token, wire.HeaderIdempotencyKey: "pay-1"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := send(tess, 5); r.status != 200 || r.header.Get(wire.HeaderReplayed) != "" {
		t.Fatalf("tess: %s", r)
	}
	if r := send(tom, 7); r.status != 200 || r.header.Get(wire.HeaderReplayed) != "" {
		t.Fatalf("tom with tess's key: %s (a key must not reach across principals)", r)
	}
	if r := send(tess, 9); r.status != 409 || r.problem().Code != "idempotency_key_reused" {
		t.Fatalf("tess reusing her own key: %s", r)
	}
	if a := decode[wire.Account](t, call(t, tn, "GET", "/v1/accounts/A", nil, nil)); a.Balance != 512 {
		t.Fatalf("balance %d, want 512", a.Balance)
	}
}

// TestBadCredentialsAre401: every shape of a bad credential is 401 with
// WWW-Authenticate, never a 500 and never a hint of another token.
func TestBadCredentialsAre401(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 1), 1, nil)
	tn := c.nodes[0]
	good, id := c.newToken(tn, "tess", "teller")
	mustOK(t, call(t, tn, "DELETE", fmt.Sprintf("/v1/admin/tokens/%d", id), nil, nil), 200)
	for name, h := range map[string]string{
		"empty":               "",
		"bearer, nothing":     "Bearer ",
		"basic":               "Basic dXNlcjpwYXNz",
		"huge":                "Bearer zkb_" + strings.Repeat("A", 16<<10),
		"not ASCII":           "Bearer zkb_ÄÖÜäöü" + strings.Repeat("x", 31),
		"a revoked token":     "Bearer " + good,
		"its prefix":          "Bearer " + good[:20],
		"well formed, random": "Bearer zkb_" + strings.Repeat("Q", 43),
		"control bytes":       "Bearer zkb_\x01\x02" + strings.Repeat("x", 41),
	} {
		r, err := callAs(c.anonymous(), tn, "GET", "/v1/accounts", nil, map[string]string{"Authorization": h})
		if err != nil {
			// net/http refuses to send some of these; the server is fine
			if strings.Contains(err.Error(), "invalid header") {
				continue
			}
			t.Fatalf("%s: %v", name, err)
		}
		if r.status != 401 || r.problem().Code != "unauthenticated" || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: %s", name, r)
		}
	}
	if r := call(t, tn, "GET", "/readyz", nil, nil); r.status != 200 {
		t.Fatalf("after the bad credentials: %s", r)
	}
}

// TestARevokedTokensForwardedWriteIsRefusedAtApply: a teller's deposit
// passes the follower's check, then waits on its way to the leader while
// the token is revoked; the leader's engine refuses it at apply, on every
// node alike, and the refusal is recorded in the log.
func TestARevokedTokensForwardedWriteIsRefusedAtApply(t *testing.T) {
	hold := make(chan struct{})
	var held atomic.Int32
	c := newCluster(t, zktest.Shared(t, 1), 2, func(cfg *node.Config) {
		cfg.Transport = holdingForwards{Transport: cfg.Transport, hold: hold, held: &held}
	})
	leader, _ := c.leader()
	follower := c.followers()[0]
	mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: "A", Name: "A", Balance: 100}, nil), 201)
	tess, id := c.newToken(leader, "tess", "teller")
	c.converged()

	done := make(chan response, 1)
	go func() { done <- c.withToken(follower, tess, "POST", "/v1/accounts/A/deposit", wire.Amount{Amount: 50}) }()
	zktest.Eventually(t, 10*time.Second, "the deposit held on its way to the leader", func() bool { return held.Load() == 1 })
	mustOK(t, call(t, leader, "DELETE", fmt.Sprintf("/v1/admin/tokens/%d", id), nil, nil), 200)
	close(hold)
	r := <-done
	if r.status != 401 || r.problem().Code != "unauthenticated" || r.header.Get(wire.HeaderIndex) == "" {
		t.Fatalf("the held deposit: %s (want 401 from the log, with its index)", r)
	}
	d := c.converged()
	if a := decode[wire.Account](t, call(t, follower, "GET", "/v1/accounts/A?min_index="+fmt.Sprint(d.Index), nil, nil)); a.Balance != 100 {
		t.Fatalf("balance %d after a refused deposit", a.Balance)
	}
}

// holdingForwards holds every forwarded write until hold is closed.
type holdingForwards struct {
	node.Transport
	hold chan struct{}
	held *atomic.Int32
}

func (h holdingForwards) Forward(ctx context.Context, addr string, bv uint32, cmds []engine.Command) (uint64, []node.Outcome, error) {
	if cmds[0].Op == engine.OpDeposit {
		h.held.Add(1)
		<-h.hold
	}
	return h.Transport.Forward(ctx, addr, bv, cmds)
}

// TestExpiryIsTheLogsTimeNotTheNodes: the leader's clock is an hour
// behind; a token of 30 minutes is in force by the log's time (every
// node's clock says it expired), then, once the leader's clock passes its
// end, refused on every node alike.
func TestExpiryIsTheLogsTimeNotTheNodes(t *testing.T) {
	// Every node's clock is an hour ahead; the log's time follows
	// ZooKeeper's (docs/format.md, "Entry time"), and expiry follows the
	// log's time, on the leader and the follower alike.
	c := newCluster(t, zktest.Shared(t, 1), 2, func(cfg *node.Config) {
		cfg.Clock = func() time.Time { return time.Now().Add(time.Hour) }
	})
	leader, _ := c.leader()
	follower := c.followers()[0]
	mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: "A", Name: "A", Balance: 100}, nil), 201)
	r := call(t, leader, "POST", "/v1/admin/tokens", wire.TokenRequest{Name: "long", Role: "teller", ExpiresIn: "30m"}, nil)
	mustOK(t, r, 201)
	long := decode[wire.Token](t, r)
	if at, _ := time.Parse(time.RFC3339Nano, long.ExpiresAt); !at.Before(time.Now().Add(time.Hour)) || at.Before(time.Now()) {
		t.Fatalf("expires at %s: want 30 minutes from now, which the nodes' clocks have passed already", long.ExpiresAt)
	}
	r = call(t, leader, "POST", "/v1/admin/tokens", wire.TokenRequest{Name: "brief", Role: "teller", ExpiresIn: "3s"}, nil)
	mustOK(t, r, 201)
	brief := decode[wire.Token](t, r)
	for _, tn := range []*testNode{leader, follower} {
		mustOK(t, c.withToken(tn, long.Token, "POST", "/v1/accounts/A/deposit", wire.Amount{Amount: 1}), 200)
		mustOK(t, c.withToken(tn, brief.Token, "POST", "/v1/accounts/A/deposit", wire.Amount{Amount: 1}), 200)
	}
	time.Sleep(3 * time.Second)                                                                    // the brief token's end passes
	mustOK(t, call(t, leader, "POST", "/v1/accounts/A/deposit", wire.Amount{Amount: 1}, nil), 200) // and the log's time with it
	d := c.converged()
	for _, tn := range []*testNode{leader, follower} {
		call(t, tn, "GET", fmt.Sprintf("/v1/digest?min_index=%d", d.Index), nil, nil)
		if r := c.withToken(tn, brief.Token, "POST", "/v1/accounts/A/deposit", wire.Amount{Amount: 1}); r.status != 401 {
			t.Errorf("the expired token on %s: %s", tn.id, r)
		}
		mustOK(t, c.withToken(tn, long.Token, "POST", "/v1/accounts/A/deposit", wire.Amount{Amount: 1}), 200)
	}
}
