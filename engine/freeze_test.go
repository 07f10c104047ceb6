package engine

import (
	"bytes"
	"errors"
	"testing"
)

// applyAtTime applies cmds in an entry of version stamped timeMs.
func applyAtTime(t *testing.T, e *Engine, version uint32, timeMs int64, cmds ...Command) []Result {
	t.Helper()
	return mustApply(t, e, nextEntryAt(t, e, version, timeMs, cmds...))
}

func freeze(number string) Command { return Command{Op: OpFreezeAccount, Key: key(), Account: number} }
func unfreeze(number string) Command {
	return Command{Op: OpUnfreezeAccount, Key: key(), Account: number}
}

// TestAFrozenAccountMovesNoMoney: from body version 4 on, a frozen
// account refuses deposits, withdrawals, transfers in and out and its
// closing, and nothing of a refused command changes the state; it still
// reads and renames, its flag survives a snapshot, and once unfrozen
// money moves again. A retry of a freeze answers as the first time.
func TestAFrozenAccountMovesNoMoney(t *testing.T) {
	e := newTestEngine(t)
	applyAtTime(t, e, BodyV4, 1, create("A", "Ada", 100), create("B", "Bob", 0), create("Z", "Zed", 0))
	fr := freeze("A")
	if r := applyAtTime(t, e, BodyV4, 2, fr)[0]; r.Code != CodeOK || !r.Accounts()[0].Frozen || r.Accounts()[0].UpdatedIndex != 2 {
		t.Fatalf("freeze: %+v", r)
	}
	hash := e.StateHash()
	index := e.Index()
	for name, c := range map[string]Command{
		"deposit": deposit("A", 1), "withdraw": withdraw("A", 1), "transfer out": transfer("A", "B", 1),
		"transfer in": transfer("B", "A", 0+1), "close": remove("A"),
	} {
		if r := applyAtTime(t, e, BodyV4, 3, c)[0]; r.Code != CodeAccountFrozen {
			t.Errorf("%s on a frozen account: %v, want account_frozen", name, r.Code)
		}
	}
	if e.Index() != index+5 {
		t.Fatalf("index %d after five refusals from %d", e.Index(), index)
	}
	if applyAtTime(t, e, BodyV4, 3, remove("Z"))[0].Code != CodeOK {
		t.Fatal("an account that is not frozen did not close")
	}
	if a, _ := e.Get("A"); a.Balance != 100 || !a.Frozen {
		t.Fatalf("A after the refusals: %+v", a)
	}
	if hash == e.StateHash() {
		t.Fatal("the state hash did not move with the index")
	}
	if r := applyAtTime(t, e, BodyV4, 4, rename("A", "Ada Lovelace"))[0]; r.Code != CodeOK || !r.Accounts()[0].Frozen {
		t.Fatalf("rename of a frozen account: %+v", r)
	}
	if r := applyAtTime(t, e, BodyV4, 5, fr)[0]; !r.Replayed || !r.Accounts()[0].Frozen {
		t.Fatalf("a retried freeze: %+v", r)
	}
	again, err := Restore(e.Config(), bytes.NewReader(stateBytes(t, e)))
	if err != nil || again.StateHash() != e.StateHash() {
		t.Fatalf("restored: %v", err)
	}
	if a, _ := again.Get("A"); !a.Frozen {
		t.Fatal("the frozen flag did not survive a snapshot")
	}
	applyAtTime(t, e, BodyV4, 6, unfreeze("A"))
	if r := applyAtTime(t, e, BodyV4, 7, transfer("A", "B", 40))[0]; r.Code != CodeOK || r.Accounts()[0].Frozen {
		t.Fatalf("a transfer after unfreezing: %+v", r)
	}
}

// TestFreezingNeedsBodyVersion4AndATeller: older bodies cannot carry the
// ops, and only admins and tellers may freeze.
func TestFreezingNeedsBodyVersion4AndATeller(t *testing.T) {
	if _, err := ForBody(BodyV3, []Command{freeze("A")}); !errors.Is(err, ErrNotInVersion) {
		t.Fatalf("a freeze in a version 3 body: %v, want ErrNotInVersion", err)
	}
	for role, want := range map[Role]Code{RoleAdmin: CodeOK, RoleTeller: CodeOK, RoleAuditor: CodeForbidden, RoleCustomer: CodeForbidden} {
		for _, c := range []Command{freeze("A"), unfreeze("A")} {
			if got := Permits(role, []string{"A"}, &c); got != want {
				t.Errorf("%v %s: %v, want %v", role, c.Op, got, want)
			}
		}
	}
	if c := freeze("no such!"); c.Check() != CodeInvalidAccount {
		t.Fatalf("freeze of a malformed number: %v", c.Check())
	}
}

// TestTheLogsTimeNeverGoesBackFromVersion4: from body version 4 the state
// keeps the effective time, the highest time of the log so far; before
// it, the entry's own (as the logs written then were applied).
func TestTheLogsTimeNeverGoesBackFromVersion4(t *testing.T) {
	old := newTestEngine(t)
	applyAtTime(t, old, BodyV3, 5_000, create("A", "Ada", 1))
	applyAtTime(t, old, BodyV3, 3_000, deposit("A", 1))
	if old.TimeMs() != 3_000 {
		t.Fatalf("a version 3 log's state keeps the entry's time: %d, want 3000", old.TimeMs())
	}
	e := newTestEngine(t)
	for _, step := range []struct{ at, want int64 }{{5_000, 5_000}, {3_000, 5_000}, {4_000, 5_000}, {6_000, 6_000}} {
		applyAtTime(t, e, BodyV4, step.at, deposit("A", 1))
		if e.TimeMs() != step.want {
			t.Fatalf("entry stamped %d: the log's time %d, want %d", step.at, e.TimeMs(), step.want)
		}
	}
}
