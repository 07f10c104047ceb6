package engine

import (
	"bytes"
	"errors"
	"testing"
)

func createHold(from, to string, amount, ttlMs uint64) Command {
	return Command{Op: OpCreateHold, Key: key(), Account: from, To: to, Amount: amount, ExpiresInMs: ttlMs}
}

func captureHold(id, amount uint64) Command {
	return Command{Op: OpCaptureHold, Key: key(), Hold: id, Amount: amount}
}

func voidHold(id uint64) Command { return Command{Op: OpVoidHold, Key: key(), Hold: id} }

// applyV5 applies cmds in a version 5 entry stamped timeMs.
func applyV5(t *testing.T, e *Engine, timeMs int64, cmds ...Command) []Result {
	t.Helper()
	return applyAtTime(t, e, BodyV5, timeMs, cmds...)
}

func mustAccount(t *testing.T, e *Engine, number string) Account {
	t.Helper()
	a, ok := e.Get(number)
	if !ok {
		t.Fatalf("account %s not found", number)
	}
	return a
}

// TestAHoldReservesThenCaptures: a hold takes money from what is
// available, not from the balance, until a capture moves part of it and
// releases the rest; the total of balances moves only with the capture.
func TestAHoldReservesThenCaptures(t *testing.T) {
	e := newTestEngine(t)
	applyV5(t, e, 1_000, create("A", "Ada", 100), create("B", "Bob", 0))
	r := applyV5(t, e, 1_000, createHold("A", "B", 60, 5_000))[0]
	if r.Code != CodeOK || r.Hold == nil || r.Hold.ID != 1 || r.Hold.ExpiresMs != 6_000 || r.Hold.Status != HoldOpen {
		t.Fatalf("create_hold: %+v %+v", r, r.Hold)
	}
	if a := r.Accounts()[0]; a.Balance != 100 || a.Held != 60 || a.Available() != 40 {
		t.Fatalf("A after the hold: %+v", a)
	}
	if tot := e.Totals(); tot.Balance != 100 || tot.Held != 60 {
		t.Fatalf("totals after the hold: %+v", tot)
	}
	for name, c := range map[string]Command{"withdraw": withdraw("A", 41), "transfer": transfer("A", "B", 41), "hold": createHold("A", "B", 41, 1)} {
		if got := applyV5(t, e, 1_001, c)[0].Code; got != CodeInsufficientFunds {
			t.Errorf("%s of more than is available: %v, want insufficient_funds", name, got)
		}
	}
	if got := applyV5(t, e, 1_001, withdraw("A", 40))[0]; got.Code != CodeOK || got.Accounts()[0].Available() != 0 {
		t.Fatalf("withdraw of what is available: %+v", got)
	}
	if got := applyV5(t, e, 1_002, captureHold(1, 61))[0].Code; got != CodeCaptureExceedsHold {
		t.Fatalf("capture above the hold: %v", got)
	}
	r = applyV5(t, e, 1_002, captureHold(1, 25))[0]
	if r.Code != CodeOK || r.Hold.Status != HoldCaptured || r.Hold.Captured != 25 || r.Hold.ClosedIndex != e.Index() {
		t.Fatalf("capture: %+v %+v", r, r.Hold)
	}
	from, to := r.Accounts()[0], r.Accounts()[1]
	if from.Balance != 35 || from.Held != 0 || to.Balance != 25 {
		t.Fatalf("after capturing 25 of 60: from %+v, to %+v", from, to)
	}
	if tot := e.Totals(); tot.Balance != 60 || tot.Held != 0 {
		t.Fatalf("totals after the capture: %+v", tot)
	}
	for _, c := range []Command{captureHold(1, 0), voidHold(1)} {
		if got := applyV5(t, e, 1_003, c)[0].Code; got != CodeHoldClosed {
			t.Errorf("%s of a captured hold: %v, want hold_closed", c.Op, got)
		}
	}
}

// TestHoldsExpireByTheLogsTime: an open hold is released by the first
// entry whose effective time reaches its expiry, before that entry's
// commands, so a capture in it is too late; an entry stamped earlier (a
// leader whose clock is behind) does not release it, and a retry of the
// create answers its first outcome.
func TestHoldsExpireByTheLogsTime(t *testing.T) {
	e := newTestEngine(t)
	applyV5(t, e, 10_000, create("A", "Ada", 100), create("B", "Bob", 0))
	c := createHold("A", "B", 30, 500)
	first := applyV5(t, e, 10_000, c)[0]
	if next, ok := e.NextExpiryMs(); !ok || next != 10_500 {
		t.Fatalf("next expiry %d %v, want 10500", next, ok)
	}
	applyV5(t, e, 10_499)
	applyV5(t, e, 2_000) // a clock an hour behind: the log's time stays
	if h, _ := e.Hold(1); h.Status != HoldOpen {
		t.Fatalf("the hold closed before its time: %+v", h)
	}
	r := applyV5(t, e, 10_500, captureHold(1, 0))[0]
	if r.Code != CodeHoldExpired {
		t.Fatalf("a capture in the entry that reaches the expiry: %v, want hold_expired", r.Code)
	}
	h, _ := e.Hold(1)
	if h.Status != HoldExpired || h.ClosedIndex != e.Index() {
		t.Fatalf("the hold after its expiry: %+v, want expired at %d", h, e.Index())
	}
	if a := mustAccount(t, e, "A"); a.Held != 0 || a.Balance != 100 {
		t.Fatalf("A after the expiry: %+v", a)
	}
	if _, ok := e.NextExpiryMs(); ok {
		t.Fatal("an expiry is still due")
	}
	if again := applyV5(t, e, 10_600, c)[0]; !again.Replayed || again.Code != CodeOK || again.Hold.ID != first.Hold.ID || again.Hold.Status != HoldExpired {
		t.Fatalf("a retried create: %+v %+v", again, again.Hold)
	}
}

// TestHoldRefusals: each refusal has its code and changes nothing but
// the index; a void works on a frozen account, a capture does not.
func TestHoldRefusals(t *testing.T) {
	e := newTestEngine(t)
	applyV5(t, e, 1, create("A", "Ada", 100), create("B", "Bob", 0), create("C", "Cy", 0))
	applyV5(t, e, 1, createHold("A", "B", 10, 1_000), createHold("A", "C", 10, 1_000))
	applyV5(t, e, 1, freeze("C"))
	hash := e.StateHash()
	for name, tc := range map[string]struct {
		c    Command
		want Code
	}{
		"unknown hold":       {captureHold(99, 0), CodeHoldNotFound},
		"hold zero":          {voidHold(0), CodeInvalidHold},
		"no expiry":          {createHold("A", "B", 1, 0), CodeInvalidHold},
		"expiry too far":     {createHold("A", "B", 1, HoldTTLMax+1), CodeInvalidHold},
		"same account":       {createHold("A", "A", 1, 1), CodeSameAccount},
		"no such account":    {createHold("A", "Z", 1, 1), CodeAccountNotFound},
		"into a frozen one":  {createHold("A", "C", 1, 1), CodeAccountFrozen},
		"capture to frozen":  {captureHold(2, 0), CodeAccountFrozen},
		"above available":    {createHold("A", "B", 81, 1), CodeInsufficientFunds},
		"close with holds":   {remove("A"), CodeBalanceNotZero},
		"bad capture amount": {captureHold(1, MaxAmount+1), CodeInvalidAmount},
	} {
		if got := applyV5(t, e, 2, tc.c)[0].Code; got != tc.want {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
	if a := mustAccount(t, e, "A"); a.Balance != 100 || a.Held != 20 {
		t.Fatalf("A after the refusals: %+v", a)
	}
	if e.StateHash() == hash {
		t.Fatal("the state hash did not move with the index")
	}
	if r := applyV5(t, e, 3, voidHold(2))[0]; r.Code != CodeOK || r.Hold.Status != HoldVoided || r.Accounts()[0].Held != 10 {
		t.Fatalf("void of a hold into a frozen account: %+v", r)
	}
	applyV5(t, e, 3, freeze("A"))
	if got := applyV5(t, e, 3, captureHold(1, 0))[0].Code; got != CodeAccountFrozen {
		t.Fatalf("capture from a frozen account: %v, want account_frozen", got)
	}
	if r := applyV5(t, e, 3, voidHold(1))[0]; r.Code != CodeOK || r.Accounts()[0].Held != 0 {
		t.Fatalf("void of a hold from a frozen account: %+v", r)
	}
	if got := applyV5(t, e, 3, voidHold(1))[0].Code; got != CodeHoldClosed {
		t.Fatalf("a second void: %v, want hold_closed", got)
	}
}

// TestHoldsNeedBodyVersion5AndTheirFromsAuthority: older bodies cannot
// carry hold ops or fields; a customer may create, capture and void holds
// from its own accounts only; a teller and an admin any.
func TestHoldsNeedBodyVersion5AndTheirFromsAuthority(t *testing.T) {
	for _, c := range []Command{createHold("A", "B", 1, 1), {Op: OpDeposit, Key: "k", Account: "A", Amount: 1, Hold: 1}} {
		if _, err := ForBody(BodyV4, []Command{c}); !errors.Is(err, ErrNotInVersion) {
			t.Fatalf("%s with hold fields in a version 4 body: %v, want ErrNotInVersion", c.Op, err)
		}
	}
	e := newTestEngine(t)
	applyV5(t, e, 1, create("A", "Ada", 100), create("B", "Bob", 100))
	applyV5(t, e, 1, createHold("A", "B", 10, 1_000), createHold("B", "A", 10, 1_000))
	mine := []string{"A"}
	for _, tc := range []struct {
		c    Command
		want Code
	}{
		{createHold("A", "B", 1, 1), CodeOK},
		{createHold("B", "A", 1, 1), CodeForbidden},
		{captureHold(1, 0), CodeOK},
		{voidHold(1), CodeOK},
		{captureHold(2, 0), CodeForbidden},
		{voidHold(2), CodeForbidden},
		{voidHold(99), CodeForbidden},
	} {
		if got := e.permits(RoleCustomer, mine, &tc.c); got != tc.want {
			t.Errorf("customer of A, %s of hold %d from %q: %v, want %v", tc.c.Op, tc.c.Hold, tc.c.Account, got, tc.want)
		}
		for _, role := range []Role{RoleAdmin, RoleTeller} {
			if got := e.permits(role, nil, &tc.c); got != CodeOK {
				t.Errorf("%v, %s: %v", role, tc.c.Op, got)
			}
		}
		if got := e.permits(RoleAuditor, nil, &tc.c); got != CodeForbidden {
			t.Errorf("auditor, %s: %v", tc.c.Op, got)
		}
	}
}

// TestHoldsSurviveASnapshotAndTheOldestClosedAreForgotten: open and
// closed holds, and what they reserve, come back from a snapshot; the
// state remembers the Config.ClosedHoldsKept most recently closed
// holds, and an older one answers hold_closed.
func TestHoldsSurviveASnapshotAndTheOldestClosedAreForgotten(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ClosedHoldsKept = 1_000
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	applyV5(t, e, 1, create("A", "Ada", 1_000_000), create("B", "Bob", 0))
	total := cfg.ClosedHoldsKept + 2
	for done := 0; done < total; {
		n := min(300, total-done)
		cmds := make([]Command, 0, 2*n)
		for i := 0; i < n; i++ {
			cmds = append(cmds, createHold("A", "B", 1, 1_000))
		}
		for i := 0; i < n; i++ {
			cmds = append(cmds, voidHold(uint64(done+i+1)))
		}
		applyV5(t, e, 1, cmds...)
		done += n
	}
	applyV5(t, e, 1, createHold("A", "B", 7, 1_000))
	if _, ok := e.Hold(1); ok {
		t.Fatal("the first closed hold is still remembered")
	}
	if h, ok := e.Hold(3); !ok || h.Status != HoldVoided {
		t.Fatalf("hold 3: %+v %v", h, ok)
	}
	if got := applyV5(t, e, 1, voidHold(1))[0].Code; got != CodeHoldClosed {
		t.Fatalf("a void of a forgotten hold: %v, want hold_closed", got)
	}
	if list := e.HoldsOf("A", uint64(total), 10); len(list) != 1 || list[0].Amount != 7 {
		t.Fatalf("A's holds after %d: %+v", total, list)
	}
	if list := e.HoldsOf("B", 0, 3); len(list) != 3 || list[0].ID != 3 {
		t.Fatalf("B's first remembered holds: %+v", list)
	}
	again, err := Restore(e.Config(), bytes.NewReader(stateBytes(t, e)))
	if err != nil || again.StateHash() != e.StateHash() {
		t.Fatalf("restore: %v", err)
	}
	if a := mustAccount(t, again, "A"); a.Held != 7 || again.Totals().Held != 7 {
		t.Fatalf("restored A: %+v, totals %+v", a, again.Totals())
	}
	next := uint64(total + 2)
	if r := applyV5(t, again, 1, createHold("A", "B", 1, 1))[0]; r.Hold.ID != next {
		t.Fatalf("the restored engine's next hold is %d, want %d", r.Hold.ID, next)
	}
}

// TestRestoreRefusesMoreClosedHoldsThanItKeeps: a state written with a
// larger ClosedHoldsKept than the reader's is corrupt to it, not quietly
// cut (nodes must run with one Config).
func TestRestoreRefusesMoreClosedHoldsThanItKeeps(t *testing.T) {
	e := newTestEngine(t)
	applyV5(t, e, 1, create("A", "Ada", 100), create("B", "Bob", 0))
	for i := uint64(1); i <= 3; i++ {
		applyV5(t, e, 1, createHold("A", "B", 1, 1_000), voidHold(i))
	}
	cfg := DefaultConfig()
	cfg.ClosedHoldsKept = 2
	if _, err := Restore(cfg, bytes.NewReader(stateBytes(t, e))); !errors.Is(err, ErrCorruptState) {
		t.Fatalf("restore keeping 2 of 3 closed holds: %v, want ErrCorruptState", err)
	}
}

// TestRestoreRefusesDamagedVersion5State: a version 5 state with holds,
// a limit, approvals and key times, cut anywhere or with a byte more,
// does not restore (and never panics).
func TestRestoreRefusesDamagedVersion5State(t *testing.T) {
	e := newTestEngine(t)
	applyV5(t, e, 1, create("A", "Ada", 100), create("B", "Bob", 0), setLimit(RoleTeller, 10))
	applyV5(t, e, 2, createHold("A", "B", 5, 1_000), createHold("A", "B", 6, 1_000), voidHold(2), by(teller1, deposit("A", 50)))
	good := stateBytes(t, e)
	if _, err := Restore(e.Config(), bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(good); n++ {
		if _, err := Restore(e.Config(), bytes.NewReader(good[:n])); err == nil {
			t.Fatalf("restored a state cut to %d of %d bytes", n, len(good))
		}
	}
	if _, err := Restore(e.Config(), bytes.NewReader(append(append([]byte{}, good...), 0))); err == nil {
		t.Fatal("restored a state with a trailing byte")
	}
}
