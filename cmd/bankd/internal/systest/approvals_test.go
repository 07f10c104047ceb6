package systest

import (
	"fmt"
	"testing"

	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// TestFourEyes: with a teller limit, a teller's deposit above it through
// a follower is 202, not applied, pending; its teller may not approve it;
// another teller approves it on the leader and it is applied then; a
// retry of the first key answers the approval as it is now; an admin
// rejects a transfer; an auditor may not decide; customers do not see
// approvals; a batch answers approval_pending in its result.
func TestFourEyes(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 1), 2, nil)
	leader, _ := c.leader()
	follower := c.followers()[0]
	for _, acct := range []string{"A", "B"} {
		mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: acct, Name: acct, Balance: 10_000}, nil), 201)
	}
	tess, _ := c.newToken(leader, "tess", "teller")
	tom, _ := c.newToken(leader, "tom", "teller")
	audrey, _ := c.newToken(leader, "audrey", "auditor")
	ada, _ := c.newToken(leader, "ada", "customer", "A")
	mustOK(t, call(t, leader, "POST", "/v1/admin/approval-limits", wire.ApprovalLimit{Role: "teller", Limit: 1_000}, nil), 200)
	c.converged()

	key := map[string]string{wire.HeaderIdempotencyKey: "big-deposit", "Authorization": "Bearer " + tess}
	r, err := callAs(c.anonymous(), follower, "POST", "/v1/accounts/A/deposit", wire.Amount{Amount: 5_000}, key)
	if err != nil || r.status != 202 {
		t.Fatalf("a deposit above the teller limit: %v %s, want 202", err, r)
	}
	ap := decode[wire.Pending](t, r).Approval
	if ap.ID == 0 || ap.Status != "pending" || ap.Op != "deposit" || ap.Amount != 5_000 || ap.By == "" {
		t.Fatalf("the pending approval: %+v", ap)
	}
	path := fmt.Sprintf("/v1/approvals/%d", ap.ID)
	if a := decode[wire.Account](t, call(t, leader, "GET", "/v1/accounts/A?consistency=linearizable", nil, nil)); a.Balance != 10_000 {
		t.Fatalf("A moved before the approval: %+v", a)
	}
	if r := c.withToken(follower, tess, "POST", path+"/approve", nil); r.status != 403 || r.problem().Code != "own_approval" {
		t.Fatalf("its own teller approves: %s, want 403 own_approval", r)
	}
	for _, who := range []string{audrey, ada} {
		if r := c.withToken(follower, who, "POST", path+"/approve", nil); r.status != 403 || r.problem().Code != "forbidden" {
			t.Errorf("an auditor or a customer approves: %s, want 403 forbidden", r)
		}
	}
	if r := c.withToken(follower, ada, "GET", "/v1/approvals", nil); r.status != 403 {
		t.Errorf("a customer lists approvals: %s, want 403", r)
	}
	if list := decode[wire.ApprovalList](t, c.withToken(follower, audrey, "GET", "/v1/approvals", nil)); len(list.Approvals) != 1 || list.Approvals[0].ID != ap.ID {
		t.Fatalf("the auditor's list of pending approvals: %+v", list)
	}
	r = c.withToken(leader, tom, "POST", path+"/approve", nil)
	mustOK(t, r, 200)
	decided := decode[wire.ApprovalResult](t, r)
	if decided.Approval.Status != "approved" || decided.Approval.Outcome != "ok" || len(decided.Accounts) != 1 || decided.Accounts[0].Balance != 15_000 {
		t.Fatalf("another teller approves: %s", r)
	}
	r, _ = callAs(c.anonymous(), leader, "POST", "/v1/accounts/A/deposit", wire.Amount{Amount: 5_000}, key)
	if r.status != 202 || decode[wire.Pending](t, r).Approval.Status != "approved" {
		t.Fatalf("a retry of the deposit's key: %s", r)
	}
	r = c.withToken(follower, tess, "POST", "/v1/transfers", wire.Transfer{From: "A", To: "B", Amount: 2_000})
	tr := decode[wire.Pending](t, r).Approval
	r = call(t, leader, "POST", fmt.Sprintf("/v1/approvals/%d/reject", tr.ID), nil, nil)
	mustOK(t, r, 200)
	if got := decode[wire.ApprovalResult](t, r); got.Approval.Status != "rejected" || len(got.Accounts) != 0 {
		t.Fatalf("an admin rejects: %s", r)
	}
	r = c.withToken(follower, tess, "POST", "/v1/batch", wire.Batch{Commands: []wire.Command{{Op: "withdraw", Account: "B", Amount: 3_000}, {Op: "withdraw", Account: "B", Amount: 3}}})
	mustOK(t, r, 200)
	if res := decode[wire.BatchResult](t, r).Results; res[0].Code != "approval_pending" || res[0].Approval == nil || res[1].Code != "ok" {
		t.Fatalf("a batch with a command above the limit: %s", r)
	}
	if l := decode[wire.ApprovalLimits](t, c.withToken(follower, audrey, "GET", "/v1/admin/approval-limits", nil)); len(l.Limits) != 1 || l.Limits[0] != (wire.ApprovalLimit{Role: "teller", Limit: 1_000}) {
		t.Fatalf("the limits: %+v", l)
	}
	d := c.converged()
	if d.TotalBalance != 20_000+5_000-3 {
		t.Fatalf("the bank's total %d, want %d", d.TotalBalance, 20_000+5_000-3)
	}
}
