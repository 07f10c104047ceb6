package engine

import "strconv"

// Four eyes (body version 5 and later): an admin sets, per role, the
// largest amount a deposit, withdrawal or transfer may move on its own
// (set_approval_limit). A command above its principal's role's limit is
// not applied but kept as a pending approval (outcome approval_pending),
// until a different principal, a teller or an admin, approves it (then it
// is applied, at the approve's index, with the outcome it has then) or
// rejects it, or it expires, ApprovalTTLMs of the log's time after it was
// asked for, as holds do (before an entry's commands).

// ApprovalStatus is where an approval is in its life. The numbers are
// part of the state format: never renumber, only append.
type ApprovalStatus uint8

// Approval statuses. Zero is invalid.
const (
	ApprovalPending   ApprovalStatus = 1
	ApprovalApproved  ApprovalStatus = 2
	ApprovalRejected  ApprovalStatus = 3
	ApprovalExpired   ApprovalStatus = 4
	approvalStatusEnd                = 5
)

var approvalStatusNames = [approvalStatusEnd]string{"", "pending", "approved", "rejected", "expired"}

func (s ApprovalStatus) String() string {
	if s > 0 && s < approvalStatusEnd {
		return approvalStatusNames[s]
	}
	return "invalid"
}

// Limits of approvals, part of the replicated protocol.
const (
	// ApprovalsMax bounds the pending approvals: a command that would
	// need one past it is limit_exceeded.
	ApprovalsMax = 100_000
	// ApprovalTTLMs is how long an approval stays pending: 24 hours of
	// the log's time.
	ApprovalTTLMs = 24 * 3600 * 1000
)

// Approval is a command waiting for a second principal, as the state
// holds it.
type Approval struct {
	ID             uint64
	Op             Op // deposit, withdraw or transfer
	Account, To    string
	Amount         uint64
	By             string // the principal that asked
	RequestedIndex uint64
	ExpiresMs      int64
	ClosedIndex    uint64 // 0 while pending
	Status         ApprovalStatus
	ClosedBy       string // the principal that approved or rejected it
	Outcome        Code   // of the command, once approved
}

func (a Approval) id() uint64       { return a.ID }
func (a Approval) expiry() int64    { return a.ExpiresMs }
func (a Approval) closedAt() uint64 { return a.ClosedIndex }

// command is the command the approval holds, as its principal sent it.
func (a *Approval) command() Command {
	return Command{Op: a.Op, Key: "approval-" + strconv.FormatUint(a.ID, 10), Account: a.Account, To: a.To, Amount: a.Amount, Principal: a.By}
}

// approvalTable is the pending approvals and the most recently closed,
// and the limits per role.
type approvalTable struct {
	lifecycle[Approval]
	limits [roleEnd]uint64 // per role; 0: none
}

func newApprovalTable(keep int) *approvalTable {
	return &approvalTable{lifecycle: newLifecycle(keep, func(id uint64) Approval { return Approval{ID: id} }, nil)}
}

// limited reports whether any role has a limit.
func (t *approvalTable) limited() bool {
	return t.limits[RoleTeller] != 0 || t.limits[RoleCustomer] != 0
}

// ApprovalLimit is the limit of a role: the largest amount one of its
// principals moves without a second one (0: no limit).
func (e *Engine) ApprovalLimit(r Role) uint64 {
	if !r.Valid() {
		return 0
	}
	return e.approvals.limits[r]
}

// Approval returns an approval the state remembers: every pending one and
// the Config.ClosedHoldsKept most recently closed.
func (e *Engine) Approval(id uint64) (Approval, bool) { return e.approvals.get(id) }

// Approvals lists up to limit approvals after the id after, in id order;
// pendingOnly leaves out the closed ones.
func (e *Engine) Approvals(after uint64, limit int, pendingOnly bool) []Approval {
	var out []Approval
	e.approvals.byID.AscendGreaterOrEqual(Approval{ID: after + 1}, func(a Approval) bool {
		if !pendingOnly || a.Status == ApprovalPending {
			out = append(out, a)
		}
		return len(out) < limit
	})
	return out
}

// needsApproval reports whether c is a money command above its
// principal's role's limit.
func (e *Engine) needsApproval(c *Command) bool {
	if !e.approvals.limited() || (c.Op != OpDeposit && c.Op != OpWithdraw && c.Op != OpTransfer) {
		return false
	}
	limit := e.approvals.limits[e.roleOf(c.Principal)]
	return limit != 0 && c.Amount > limit && c.Check() == CodeOK
}

// roleOf is the role of a principal (0 for none or an unknown one).
func (e *Engine) roleOf(by string) Role {
	p, ok := ParsePrincipal(by)
	switch {
	case !ok:
		return 0
	case p.Token == 0:
		return p.Role
	}
	if t, ok := e.tokens.byID[p.Token]; ok {
		return t.Role
	}
	return 0
}

// requestApproval keeps c as a pending approval.
func (e *Engine) requestApproval(index uint64, nowMs int64, c *Command) Result {
	if e.approvals.open >= ApprovalsMax {
		return rejected(CodeLimitExceeded)
	}
	a := Approval{ID: e.approvals.next, Op: c.Op, Account: c.Account, To: c.To, Amount: c.Amount, By: c.Principal,
		RequestedIndex: index, ExpiresMs: nowMs + ApprovalTTLMs, Status: ApprovalPending}
	e.approvals.next++
	e.approvals.add(a)
	return Result{Code: CodeApprovalPending, Approval: &a}
}

// setApprovalLimit sets a role's limit (0 removes it).
func (e *Engine) setApprovalLimit(c *Command) Result {
	if code := c.Check(); code != CodeOK {
		return rejected(code)
	}
	e.approvals.limits[c.Token.Role] = c.Amount
	return Result{Code: CodeOK}
}

// openApproval finds the pending approval an approve or reject names.
func (e *Engine) openApproval(id uint64) (Approval, Code) {
	if !e.approvals.known(id) {
		return Approval{}, CodeApprovalNotFound
	}
	a, ok := e.approvals.get(id)
	switch {
	case !ok, a.Status == ApprovalApproved, a.Status == ApprovalRejected:
		return a, CodeApprovalClosed
	case a.Status == ApprovalExpired:
		return a, CodeApprovalExpired
	}
	return a, CodeOK
}

// decide approves (applying the command, with its principal's authority
// as it is now) or rejects a pending approval; its asker may not.
func (e *Engine) decide(index uint64, nowMs int64, c *Command) Result {
	if code := c.Check(); code != CodeOK {
		return rejected(code)
	}
	a, code := e.openApproval(c.Approval)
	switch {
	case code != CodeOK:
		return rejected(code)
	case c.Principal == a.By:
		return rejected(CodeOwnApproval)
	}
	closed := a
	closed.ClosedIndex, closed.ClosedBy, closed.Status = index, c.Principal, ApprovalRejected
	r := Result{Code: CodeOK}
	if c.Op == OpApprove {
		cmd := a.command()
		if r.Code = e.Authorize(&cmd, nowMs); r.Code == CodeOK {
			r = e.execute(index, nowMs, &cmd)
		}
		closed.Status, closed.Outcome = ApprovalApproved, r.Code
	}
	e.approvals.close(a, closed)
	r.Approval = &closed
	return r
}

// expireApprovals closes, before the entry at index runs its commands,
// every pending approval due at its effective time nowMs.
func (e *Engine) expireApprovals(index uint64, nowMs int64) {
	for a, ok := e.approvals.due(nowMs); ok; a, ok = e.approvals.due(nowMs) {
		closed := a
		closed.Status, closed.ClosedIndex = ApprovalExpired, index
		e.approvals.close(a, closed)
	}
}

// checkApproval validates the approval ops' fields.
func checkApproval(c *Command) Code {
	switch c.Op {
	case OpSetApprovalLimit:
		t := c.Token
		switch {
		case t == nil || (t.Role != RoleTeller && t.Role != RoleCustomer) || len(t.Accounts) != 0 || t.TTLMs != 0 || t.Hash != ([TokenHashLen]byte{}) || t.ID != 0:
			return CodeInvalidApproval
		case c.Amount > MaxAmount:
			return CodeInvalidAmount
		}
	case OpApprove, OpReject:
		if c.Approval == 0 {
			return CodeInvalidApproval
		}
	}
	return CodeOK
}
