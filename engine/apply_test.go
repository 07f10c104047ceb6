package engine

import (
	"strings"
	"testing"

	"github.com/zkbank/zkbank/engine/entry"
)

// TestCommands covers every command and every rejection. Each case starts
// from the same state: account "A" with 100, "B" with 0, "FULL" at MaxAmount.
func TestCommands(t *testing.T) {
	cases := []struct {
		name string
		cmd  Command
		code Code
		want []Account // accounts in the result (numbers and balances)
	}{
		{"create with number", create("C-1", "Carol", 5), CodeOK, []Account{{Number: "C-1", Balance: 5}}},
		{"create assigned", create("", "Dan", 0), CodeOK, []Account{{Number: "0000000001"}}},
		{"create trims name", create("T", "  Tom  ", 0), CodeOK, []Account{{Number: "T", Name: "Tom"}}},
		{"create 200 runes", create("U", strings.Repeat("é", 200), 0), CodeOK, []Account{{Number: "U"}}},
		{"create exists", create("A", "Again", 0), CodeAccountExists, nil},
		{"create bad number", create("a b", "X", 0), CodeInvalidAccount, nil},
		{"create number too long", create(strings.Repeat("1", 35), "X", 0), CodeInvalidAccount, nil},
		{"create empty name", create("X", "   ", 0), CodeInvalidName, nil},
		{"create long name", create("X", strings.Repeat("x", 201), 0), CodeInvalidName, nil},
		{"create control char", create("X", "a\x07b", 0), CodeInvalidName, nil},
		{"create bad utf8", create("X", "a\xffb", 0), CodeInvalidName, nil},
		{"create opening too big", create("X", "X", MaxAmount+1), CodeInvalidAmount, nil},
		{"deposit", deposit("A", 50), CodeOK, []Account{{Number: "A", Balance: 150}}},
		{"deposit zero", deposit("A", 0), CodeInvalidAmount, nil},
		{"deposit too big", deposit("A", MaxAmount+1), CodeInvalidAmount, nil},
		{"deposit unknown", deposit("Z", 1), CodeAccountNotFound, nil},
		{"deposit overflow", deposit("FULL", 1), CodeLimitExceeded, nil},
		{"deposit bad number", deposit("", 1), CodeInvalidAccount, nil},
		{"withdraw", withdraw("A", 100), CodeOK, []Account{{Number: "A", Balance: 0}}},
		{"withdraw too much", withdraw("A", 101), CodeInsufficientFunds, nil},
		{"withdraw unknown", withdraw("Z", 1), CodeAccountNotFound, nil},
		{"withdraw zero", withdraw("A", 0), CodeInvalidAmount, nil},
		{"transfer", transfer("A", "B", 40), CodeOK, []Account{{Number: "A", Balance: 60}, {Number: "B", Balance: 40}}},
		{"transfer all", transfer("A", "B", 100), CodeOK, []Account{{Number: "A"}, {Number: "B", Balance: 100}}},
		{"transfer too much", transfer("A", "B", 101), CodeInsufficientFunds, nil},
		{"transfer same", transfer("A", "A", 1), CodeSameAccount, nil},
		{"transfer unknown from", transfer("Z", "B", 1), CodeAccountNotFound, nil},
		{"transfer unknown to", transfer("A", "Z", 1), CodeAccountNotFound, nil},
		{"transfer overflow", transfer("A", "FULL", 1), CodeLimitExceeded, nil},
		{"transfer zero", transfer("A", "B", 0), CodeInvalidAmount, nil},
		{"delete empty", remove("B"), CodeOK, []Account{{Number: "B"}}},
		{"delete with money", remove("A"), CodeBalanceNotZero, nil},
		{"delete unknown", remove("Z"), CodeAccountNotFound, nil},
		{"rename", rename("A", " Ann "), CodeOK, []Account{{Number: "A", Name: "Ann", Balance: 100}}},
		{"rename unknown", rename("Z", "Zed"), CodeAccountNotFound, nil},
		{"rename bad name", rename("A", ""), CodeInvalidName, nil},
		{"no key", Command{Op: OpDeposit, Account: "A", Amount: 1}, CodeInvalidKey, nil},
		{"key too long", Command{Op: OpDeposit, Key: strings.Repeat("k", 65), Account: "A", Amount: 1}, CodeInvalidKey, nil},
		{"key with space", Command{Op: OpDeposit, Key: "a b", Account: "A", Amount: 1}, CodeInvalidKey, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEngine(t)
			apply(t, e, create("A", "Ada", 100), create("B", "Bob", 0), create("FULL", "Full", MaxAmount))
			before := e.StateHash()
			beforeTotals := e.Totals()
			r := apply(t, e, tc.cmd)[0]
			if r.Code != tc.code {
				t.Fatalf("code = %v, want %v", r.Code, tc.code)
			}
			checkAccounts(t, r.Accounts(), tc.want)
			if tc.code != CodeOK {
				assertUnchanged(t, e, beforeTotals, before)
			}
			if tc.cmd.Check() != tc.code && tc.code != CodeOK && stateless(tc.code) {
				t.Errorf("Check() = %v, want %v", tc.cmd.Check(), tc.code)
			}
		})
	}
}

// stateless reports whether Check can find the code without state.
func stateless(c Code) bool {
	switch c {
	case CodeInvalidAccount, CodeInvalidAmount, CodeInvalidName, CodeInvalidKey, CodeSameAccount:
		return true
	}
	return false
}

func checkAccounts(t *testing.T, got, want []Account) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("accounts = %+v, want %d", got, len(want))
	}
	for i := range want {
		if got[i].Number != want[i].Number || got[i].Balance != want[i].Balance {
			t.Errorf("account %d = %s/%d, want %s/%d", i, got[i].Number, got[i].Balance, want[i].Number, want[i].Balance)
		}
		if want[i].Name != "" && got[i].Name != want[i].Name {
			t.Errorf("account %d name = %q, want %q", i, got[i].Name, want[i].Name)
		}
	}
}

// assertUnchanged checks that a rejected command left no trace but the
// index, the chain and its key.
func assertUnchanged(t *testing.T, e *Engine, totals Totals, _ Hash) {
	t.Helper()
	if e.Totals() != totals {
		t.Errorf("totals changed: %+v -> %+v", totals, e.Totals())
	}
	for _, n := range []string{"A", "B", "FULL"} {
		a, _ := e.Get(n)
		if a.UpdatedIndex != 1 {
			t.Errorf("account %s updated at %d by a rejected command", n, a.UpdatedIndex)
		}
	}
}

func TestAssignedNumbersSkipTakenAndListInOrder(t *testing.T) {
	e := newTestEngine(t)
	res := apply(t, e, create("0000000002", "Taken", 0), create("", "One", 0), create("", "Three", 0))
	got := []string{res[1].Accounts()[0].Number, res[2].Accounts()[0].Number}
	if got[0] != "0000000001" || got[1] != "0000000003" {
		t.Fatalf("assigned %v, want 0000000001 and 0000000003", got)
	}
	list := e.List("", 10)
	if len(list) != 3 || list[0].Number != "0000000001" || list[2].Number != "0000000003" {
		t.Fatalf("list = %+v", list)
	}
	page := e.List("0000000001", 1)
	if len(page) != 1 || page[0].Number != "0000000002" {
		t.Fatalf("page after 0000000001 = %+v", page)
	}
}

func TestIdempotency(t *testing.T) {
	e := newTestEngine(t)
	apply(t, e, create("A", "Ada", 100))
	d := deposit("A", 10)
	first := apply(t, e, d)[0]
	retry := apply(t, e, d)[0]
	if !retry.Replayed || retry.Code != CodeOK || retry.Accounts()[0].Balance != 110 {
		t.Fatalf("retry = %+v, want replayed ok with balance 110", retry)
	}
	if first.Replayed {
		t.Fatal("first application marked replayed")
	}
	if a, _ := e.Get("A"); a.Balance != 110 {
		t.Fatalf("balance after retry = %d, want 110", a.Balance)
	}
	other := deposit("A", 11)
	other.Key = d.Key
	if r := apply(t, e, other)[0]; r.Code != CodeIdempotencyKeyReused {
		t.Fatalf("reused key: %v", r.Code)
	}
	// A rejection is remembered too: the retry gets the first outcome even
	// though it would now succeed.
	w := withdraw("A", 1000)
	apply(t, e, w)
	apply(t, e, deposit("A", 10_000))
	if r := apply(t, e, w)[0]; r.Code != CodeInsufficientFunds || !r.Replayed {
		t.Fatalf("retried rejection = %+v", r)
	}
}

func TestKeyWindowForgetsByLogPosition(t *testing.T) {
	e, err := New(Config{KeyWindowEntries: 3, KeyWindowMax: 100, ClosedHoldsKept: 10})
	if err != nil {
		t.Fatal(err)
	}
	apply(t, e, create("A", "Ada", 0)) // index 1
	d := deposit("A", 1)
	apply(t, e, d) // index 2
	apply(t, e, d) // index 3: remembered (entries 3..5 see it)
	apply(t, e, deposit("A", 1))
	if r := apply(t, e, d)[0]; !r.Replayed { // index 5: last entry that remembers
		t.Fatal("key forgotten inside the window")
	}
	if r := apply(t, e, d)[0]; r.Replayed { // index 6: forgotten
		t.Fatal("key remembered past the window")
	}
	if a, _ := e.Get("A"); a.Balance != 3 {
		t.Fatalf("balance = %d, want 3 (key forgotten after the window)", a.Balance)
	}
	e2, _ := New(Config{KeyWindowEntries: 1000, KeyWindowMax: 2, ClosedHoldsKept: 10})
	apply(t, e2, create("A", "Ada", 0), deposit("A", 1), deposit("A", 2))
	if e2.keys.len() != 2 {
		t.Fatalf("held %d keys, want 2", e2.keys.len())
	}
}

func TestApplyRefusesEntriesOutOfOrder(t *testing.T) {
	e := newTestEngine(t)
	first := nextEntry(t, e, create("A", "Ada", 1))
	if _, err := e.Apply(first); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Apply(first); err == nil {
		t.Fatal("applied the same entry twice")
	}
	skip := &Entry{Envelope: entry.Envelope{Index: 3, Epoch: 1, PrevHash: e.LastHash()}}
	if _, err := EncodeEntry(skip); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Apply(skip); err == nil {
		t.Fatal("applied an entry past a gap")
	}
	fork := &Entry{Envelope: entry.Envelope{Index: 2, Epoch: 1, PrevHash: Hash{1}}}
	if _, err := e.Apply(fork); err == nil {
		t.Fatal("applied an entry with a wrong prev_hash")
	}
	old := &Entry{Envelope: entry.Envelope{Index: 2, Epoch: 0, PrevHash: e.LastHash()}}
	if _, err := e.Apply(old); err == nil {
		t.Fatal("applied an entry from an older epoch")
	}
	if e.Index() != 1 {
		t.Fatalf("index = %d after refused entries", e.Index())
	}
}

func TestTotalBalanceLimit(t *testing.T) {
	e := newTestEngine(t)
	var cmds []Command
	for i := 0; i < 1024; i++ {
		cmds = append(cmds, create(formatAssigned(uint64(i+1)), "Rich", MaxAmount))
	}
	res := apply(t, e, cmds...)
	for i, r := range res {
		if r.Code != CodeOK {
			t.Fatalf("create %d: %v", i, r.Code)
		}
	}
	if r := apply(t, e, create("X", "One too many", MaxAmount))[0]; r.Code != CodeLimitExceeded {
		t.Fatalf("create past the total limit: %v", r.Code)
	}
	if e.Totals().Balance != 1024*MaxAmount {
		t.Fatalf("total = %d", e.Totals().Balance)
	}
}

func TestCodeAndOpNamesRoundTrip(t *testing.T) {
	for _, c := range Codes() {
		if got, ok := ParseCode(c.String()); !ok || got != c {
			t.Errorf("code %d %q does not round-trip", c, c)
		}
	}
	for o := OpCreateAccount; o < opEnd; o++ {
		if got, ok := ParseOp(o.String()); !ok || got != o {
			t.Errorf("op %d %q does not round-trip", o, o)
		}
	}
	// The numbers are part of the formats: pin a few.
	if CodeOK != 1 || CodeIdempotencyKeyReused != 10 || OpTransfer != 4 {
		t.Fatal("codes or ops were renumbered")
	}
}
