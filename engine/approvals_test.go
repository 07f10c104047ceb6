package engine

import (
	"bytes"
	"testing"
)

// Principals of the approval tests: certificates, whose role is in the
// principal itself.
var (
	admin   = CertPrincipal(RoleAdmin, "a1")
	teller1 = CertPrincipal(RoleTeller, "b1")
	teller2 = CertPrincipal(RoleTeller, "b2")
)

func by(p string, c Command) Command { c.Principal = p; return c }

func setLimit(role Role, amount uint64) Command {
	return Command{Op: OpSetApprovalLimit, Key: key(), Amount: amount, Token: &TokenSpec{Role: role}, Principal: admin}
}

func decide(op Op, p string, id uint64) Command {
	return Command{Op: op, Key: key(), Approval: id, Principal: p}
}

// TestATellerAboveItsLimitWaitsForASecondPrincipal: with a teller limit,
// a teller's deposit, withdrawal or transfer above it is not applied but
// kept pending; its own teller may not decide it; another approves it
// (applied then, with the outcome it has then) or rejects it; it
// expires a day of the log's time later; a retry of the first command
// answers pending with the approval as it is now; an admin is not held.
func TestATellerAboveItsLimitWaitsForASecondPrincipal(t *testing.T) {
	e := newTestEngine(t)
	const day = ApprovalTTLMs
	applyV5(t, e, 1, create("A", "Ada", 10_000), create("B", "Bob", 0), setLimit(RoleTeller, 1_000))
	if e.ApprovalLimit(RoleTeller) != 1_000 {
		t.Fatalf("teller limit %d", e.ApprovalLimit(RoleTeller))
	}
	if r := applyV5(t, e, 2, by(teller1, deposit("A", 1_000)))[0]; r.Code != CodeOK {
		t.Fatalf("a deposit at the limit: %v", r.Code)
	}
	big := by(teller1, deposit("A", 5_000))
	r := applyV5(t, e, 3, big)[0]
	if r.Code != CodeApprovalPending || r.Approval == nil || r.Approval.ID != 1 || r.Approval.ExpiresMs != 3+day || mustAccount(t, e, "A").Balance != 11_000 {
		t.Fatalf("a deposit above the limit: %+v %+v", r, r.Approval)
	}
	if got := applyV5(t, e, 4, decide(OpApprove, teller1, 1))[0].Code; got != CodeOwnApproval {
		t.Fatalf("its own teller approves: %v, want own_approval", got)
	}
	r = applyV5(t, e, 5, decide(OpApprove, teller2, 1))[0]
	if r.Code != CodeOK || r.Accounts()[0].Balance != 16_000 || r.Approval.Status != ApprovalApproved || r.Approval.Outcome != CodeOK || r.Approval.ClosedBy != teller2 {
		t.Fatalf("another teller approves: %+v %+v", r, r.Approval)
	}
	if got := applyV5(t, e, 5, decide(OpReject, teller2, 1))[0].Code; got != CodeApprovalClosed {
		t.Fatalf("a second decision: %v, want approval_closed", got)
	}
	if again := applyV5(t, e, 6, big)[0]; !again.Replayed || again.Code != CodeApprovalPending || again.Approval.Status != ApprovalApproved {
		t.Fatalf("a retry of the deposit: %+v %+v", again, again.Approval)
	}
	id := applyV5(t, e, 7, by(teller1, transfer("A", "B", 2_000)))[0].Approval.ID
	if r := applyV5(t, e, 8, decide(OpReject, admin, id))[0]; r.Code != CodeOK || r.Approval.Status != ApprovalRejected || mustAccount(t, e, "B").Balance != 0 {
		t.Fatalf("an admin rejects: %+v", r)
	}
	drained := applyV5(t, e, 9, by(teller1, withdraw("A", 9_000)))[0].Approval.ID
	applyV5(t, e, 9, by(admin, withdraw("A", 16_000)))
	if r := applyV5(t, e, 10, decide(OpApprove, teller2, drained))[0]; r.Code != CodeInsufficientFunds || r.Approval.Outcome != CodeInsufficientFunds {
		t.Fatalf("an approved withdrawal the balance no longer covers: %+v %+v", r, r.Approval)
	}
	late := applyV5(t, e, 11, by(teller1, deposit("A", 2_000)))[0].Approval.ID
	if next, ok := e.NextExpiryMs(); !ok || next != 11+day {
		t.Fatalf("next expiry %d %v, want %d", next, ok, 11+day)
	}
	applyV5(t, e, 11+day)
	if got := applyV5(t, e, 12+day, decide(OpApprove, teller2, late))[0].Code; got != CodeApprovalExpired {
		t.Fatalf("an approval a day later: %v, want approval_expired", got)
	}
	if a, _ := e.Approval(late); a.Status != ApprovalExpired || a.ClosedIndex != e.Index()-1 {
		t.Fatalf("the expired approval: %+v", a)
	}
	if pending := e.Approvals(0, 10, true); len(pending) != 0 {
		t.Fatalf("pending after all decided: %+v", pending)
	}
	if all := e.Approvals(0, 10, false); len(all) != 4 {
		t.Fatalf("%d approvals remembered, want 4", len(all))
	}
	again, err := Restore(e.Config(), bytes.NewReader(stateBytes(t, e)))
	if err != nil || again.StateHash() != e.StateHash() || again.ApprovalLimit(RoleTeller) != 1_000 {
		t.Fatalf("restore: %v", err)
	}
	applyV5(t, e, 13+day, setLimit(RoleTeller, 0))
	if r := applyV5(t, e, 14+day, by(teller1, deposit("A", 50_000)))[0]; r.Code != CodeOK {
		t.Fatalf("a deposit once the limit is gone: %v", r.Code)
	}
}

// TestWhoSetsLimitsAndDecides: only an admin sets a limit, for tellers or
// customers; tellers and admins decide, auditors and customers do not;
// and the ops' fields are checked.
func TestWhoSetsLimitsAndDecides(t *testing.T) {
	for role, want := range map[Role][2]Code{
		RoleAdmin: {CodeOK, CodeOK}, RoleTeller: {CodeForbidden, CodeOK}, RoleAuditor: {CodeForbidden, CodeForbidden}, RoleCustomer: {CodeForbidden, CodeForbidden},
	} {
		l, d := setLimit(RoleTeller, 5), decide(OpApprove, "", 1)
		if got := [2]Code{Permits(role, []string{"A"}, &l), Permits(role, []string{"A"}, &d)}; got != want {
			t.Errorf("%v: limit and decide %v, want %v", role, got, want)
		}
	}
	for _, tc := range []struct {
		c    Command
		want Code
	}{
		{setLimit(RoleAdmin, 5), CodeInvalidApproval},
		{setLimit(RoleCustomer, MaxAmount+1), CodeInvalidAmount},
		{Command{Op: OpSetApprovalLimit, Key: "k", Amount: 5}, CodeInvalidApproval},
		{decide(OpApprove, admin, 0), CodeInvalidApproval},
	} {
		if got := tc.c.Check(); got != tc.want {
			t.Errorf("%s %+v: %v, want %v", tc.c.Op, tc.c, got, tc.want)
		}
	}
	e := newTestEngine(t)
	if got := applyV5(t, e, 1, decide(OpReject, admin, 7))[0].Code; got != CodeApprovalNotFound {
		t.Fatalf("a decision on no approval: %v", got)
	}
}
