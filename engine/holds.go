package engine

import "github.com/google/btree"

// Holds are two-phase transfers (body version 5 and later): create_hold
// reserves an amount of the from account's available money for the to
// account until an expiry in the log's effective time; capture_hold moves
// all or part of it and releases the rest; void_hold releases it. An
// account's balance is its available money plus what its open holds
// reserve (Account.Held), and no hold changes a balance until a capture.
//
// Expiry is part of applying an entry: before its first command, every
// open hold whose expiry is at or before the entry's effective time is
// released, in (expiry, id) order, so every node releases the same holds
// at the same index. A leader appends an entry with no commands when a
// hold is due and no write comes (docs/format.md, "Entry time").

// HoldStatus is where a hold is in its life. The numbers are part of the
// state format: never renumber, only append.
type HoldStatus uint8

// Hold statuses. Zero is invalid.
const (
	HoldOpen      HoldStatus = 1
	HoldCaptured  HoldStatus = 2
	HoldVoided    HoldStatus = 3
	HoldExpired   HoldStatus = 4
	holdStatusEnd            = 5
)

var holdStatusNames = [holdStatusEnd]string{"", "open", "captured", "voided", "expired"}

func (s HoldStatus) String() string {
	if s > 0 && s < holdStatusEnd {
		return holdStatusNames[s]
	}
	return "invalid"
}

// Limits of holds, part of the replicated protocol.
const (
	// HoldsMax bounds the open holds: a create_hold past it is
	// limit_exceeded.
	HoldsMax = 1_000_000
	// HoldTTLMax is the longest a hold may stay open: 90 days.
	HoldTTLMax = 90 * 24 * 3600 * 1000
)

// Hold is a hold as the state holds it.
type Hold struct {
	ID           uint64
	From, To     string
	Amount       uint64 // reserved on From while open
	Captured     uint64 // moved to To by the capture
	ExpiresMs    int64  // effective time at which an open hold is released
	CreatedIndex uint64
	ClosedIndex  uint64 // 0 while open
	Status       HoldStatus
}

func (h Hold) id() uint64       { return h.ID }
func (h Hold) expiry() int64    { return h.ExpiresMs }
func (h Hold) closedAt() uint64 { return h.ClosedIndex }

// holdOf orders the holds of one account (as from or to) by id.
type holdOf struct {
	number string
	id     uint64
}

func lessHoldOf(a, b holdOf) bool {
	if a.number != b.number {
		return a.number < b.number
	}
	return a.id < b.id
}

// holdTable holds the open holds and the most recently closed ones, and
// indexes every one under its from and its to.
type holdTable struct {
	lifecycle[Hold]
	byAccount *btree.BTreeG[holdOf]
	held      uint64 // the sum of the open holds' amounts
}

func newHoldTable(keep int) *holdTable {
	t := &holdTable{byAccount: btree.NewG(32, lessHoldOf)}
	t.lifecycle = newLifecycle(keep, func(id uint64) Hold { return Hold{ID: id} }, func(h Hold) {
		t.byAccount.Delete(holdOf{h.From, h.ID})
		t.byAccount.Delete(holdOf{h.To, h.ID})
	})
	return t
}

// add files a hold read from a state or just created.
func (t *holdTable) add(h Hold) {
	t.byAccount.ReplaceOrInsert(holdOf{h.From, h.ID})
	t.byAccount.ReplaceOrInsert(holdOf{h.To, h.ID})
	if h.Status == HoldOpen {
		t.held += h.Amount
	}
	t.lifecycle.add(h)
}

// close ends an open hold.
func (t *holdTable) close(h Hold, status HoldStatus, captured, index uint64) Hold {
	closed := h
	closed.Status, closed.Captured, closed.ClosedIndex = status, captured, index
	t.held -= h.Amount
	t.lifecycle.close(h, closed)
	return closed
}

// Hold returns a hold the state remembers: every open one, and the
// Config.ClosedHoldsKept most recently closed.
func (e *Engine) Hold(id uint64) (Hold, bool) { return e.holds.get(id) }

// HoldsOf lists up to limit holds from or to an account, in id order,
// after the id after: its open holds and the closed ones remembered.
func (e *Engine) HoldsOf(number string, after uint64, limit int) []Hold {
	var out []Hold
	e.holds.byAccount.AscendGreaterOrEqual(holdOf{number, after + 1}, func(k holdOf) bool {
		if k.number != number || len(out) >= limit {
			return false
		}
		h, _ := e.holds.get(k.id)
		out = append(out, h)
		return true
	})
	return out
}

// NextExpiryMs is the expiry of the open hold or pending approval due
// first: a leader whose log time reaches it appends an entry, so that
// they expire on an idle bank too.
func (e *Engine) NextExpiryMs() (int64, bool) {
	h, holds := e.holds.nextExpiry()
	a, approvals := e.approvals.nextExpiry()
	switch {
	case holds && approvals:
		return min(h, a), true
	case approvals:
		return a, true
	}
	return h, holds
}

// expireHolds releases, before the entry at index runs its commands,
// every open hold due at its effective time nowMs.
func (e *Engine) expireHolds(index uint64, nowMs int64) {
	for h, ok := e.holds.due(nowMs); ok; h, ok = e.holds.due(nowMs) {
		e.release(h)
		e.holds.close(h, HoldExpired, 0, index)
	}
}

// release gives a hold's amount back to its from account's available
// money (the account cannot have closed: it holds the money).
func (e *Engine) release(h Hold) *slot {
	from, _ := e.accounts.change(h.From)
	from.held -= h.Amount
	return from
}

// openHold finds the open hold a capture or void names, or says why not.
func (e *Engine) openHold(id uint64) (Hold, Code) {
	if !e.holds.known(id) {
		return Hold{}, CodeHoldNotFound
	}
	h, ok := e.holds.get(id)
	switch {
	case !ok, h.Status == HoldCaptured, h.Status == HoldVoided:
		return h, CodeHoldClosed
	case h.Status == HoldExpired:
		return h, CodeHoldExpired
	}
	return h, CodeOK
}

// createHold reserves c.Amount of c.Account's available money for c.To.
func (e *Engine) createHold(index uint64, nowMs int64, c *Command) Result {
	if code := c.Check(); code != CodeOK {
		return rejected(code)
	}
	from, okFrom := e.accounts.change(c.Account)
	to, okTo := e.accounts.get(c.To)
	switch {
	case !okFrom || !okTo:
		return rejected(CodeAccountNotFound)
	case from.frozen || to.frozen:
		return rejected(CodeAccountFrozen)
	case from.available() < c.Amount:
		return rejected(CodeInsufficientFunds)
	case e.holds.open >= HoldsMax:
		return rejected(CodeLimitExceeded)
	}
	h := Hold{ID: e.holds.next, From: from.number(), To: to.number(), Amount: c.Amount,
		ExpiresMs: nowMs + int64(c.ExpiresInMs), CreatedIndex: index, Status: HoldOpen}
	e.holds.next++
	e.holds.add(h)
	from.held += h.Amount
	from.updated = index
	r := succeeded(from)
	r.Hold = &h
	return r
}

// captureHold moves c.Amount (0: all) of an open hold to its to account
// and releases the rest.
func (e *Engine) captureHold(index uint64, c *Command) Result {
	if code := c.Check(); code != CodeOK {
		return rejected(code)
	}
	h, code := e.openHold(c.Hold)
	if code != CodeOK {
		return rejected(code)
	}
	amount := c.Amount
	if amount == 0 {
		amount = h.Amount
	}
	if amount > h.Amount {
		return rejected(CodeCaptureExceedsHold)
	}
	from, _ := e.accounts.get(h.From)
	to, ok := e.accounts.get(h.To)
	switch {
	case !ok:
		return rejected(CodeAccountNotFound)
	case from.frozen || to.frozen:
		return rejected(CodeAccountFrozen)
	case to.balance+amount > MaxAmount:
		return rejected(CodeLimitExceeded)
	}
	from = e.release(h)
	to, _ = e.accounts.change(h.To)
	from.balance -= amount
	to.balance += amount
	from.updated, to.updated = index, index
	closed := e.holds.close(h, HoldCaptured, amount, index)
	r := succeeded(from)
	r.add(to.account())
	r.Hold = &closed
	return r
}

// voidHold releases an open hold; it works on frozen accounts too.
func (e *Engine) voidHold(index uint64, c *Command) Result {
	if code := c.Check(); code != CodeOK {
		return rejected(code)
	}
	h, code := e.openHold(c.Hold)
	if code != CodeOK {
		return rejected(code)
	}
	from := e.release(h)
	from.updated = index
	closed := e.holds.close(h, HoldVoided, 0, index)
	r := succeeded(from)
	r.Hold = &closed
	return r
}

// holdFrom is the account a hold op moves money out of, for Authorize:
// the from of the hold a capture or void names ("" when it is unknown).
func (e *Engine) holdFrom(c *Command) string {
	if c.Op == OpCreateHold {
		return c.Account
	}
	h, _ := e.holds.get(c.Hold)
	return h.From
}

// checkHold validates a hold op's fields.
func checkHold(c *Command) Code {
	switch c.Op {
	case OpCreateHold:
		code := firstFailure(checkNumber(c.Account), checkNumber(c.To), checkAmount(c.Amount))
		switch {
		case code != CodeOK:
			return code
		case c.Account == c.To:
			return CodeSameAccount
		case c.ExpiresInMs == 0 || c.ExpiresInMs > HoldTTLMax || c.Hold != 0:
			return CodeInvalidHold
		}
	case OpCaptureHold:
		if c.Amount > MaxAmount {
			return CodeInvalidAmount
		}
		fallthrough
	case OpVoidHold:
		if c.Hold == 0 || c.ExpiresInMs != 0 {
			return CodeInvalidHold
		}
	}
	return CodeOK
}
