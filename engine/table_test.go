package engine

import (
	"fmt"
	"hash/maphash"
	"testing"
)

// clashingPair finds two distinct strings with the given prefix whose
// index hashes under seed are equal (a birthday search, ~80k tries).
func clashingPair(t *testing.T, seed maphash.Seed, prefix string) (string, string) {
	t.Helper()
	seen := make(map[uint32]string)
	for i := 0; i < 1<<22; i++ {
		s := fmt.Sprintf("%s%d", prefix, i)
		h := indexHash(seed, s)
		if other, ok := seen[h]; ok {
			return other, s
		}
		seen[h] = s
	}
	t.Fatal("no clash found")
	return "", ""
}

// TestAccountsWithClashingHashes makes two accounts share an index hash
// and checks that each is found, changed, deleted and listed on its own,
// and that the state survives a snapshot round trip.
func TestAccountsWithClashingHashes(t *testing.T) {
	e := newTestEngine(t)
	a, b := clashingPair(t, e.accounts.seed, "C-")
	apply(t, e, create(a, "First", 10), create(b, "Second", 20))
	apply(t, e, transfer(a, b, 3), rename(b, "Renamed"))
	checkAccount(t, e, a, "First", 7)
	checkAccount(t, e, b, "Renamed", 23)
	if got := e.List("", 10); len(got) != 2 {
		t.Fatalf("listed %d accounts, want 2", len(got))
	}
	restored := snapshotRestore(t, e)
	checkAccount(t, restored, b, "Renamed", 23)

	// Deleting the account that holds the hash must leave the other one
	// reachable, and a new account must be able to take the slot back.
	apply(t, e, withdraw(a, 7), remove(a))
	if _, ok := e.Get(a); ok {
		t.Fatalf("%s still there after delete", a)
	}
	checkAccount(t, e, b, "Renamed", 23)
	apply(t, e, create(a, "Again", 1))
	checkAccount(t, e, a, "Again", 1)
	apply(t, e, withdraw(b, 23), remove(b))
	checkAccount(t, e, a, "Again", 1)
	if _, ok := e.Get(b); ok {
		t.Fatalf("%s still there after delete", b)
	}
	if e.StateHash() != snapshotRestore(t, e).StateHash() {
		t.Fatal("state hash changed over a snapshot round trip")
	}
}

// TestKeysWithClashingHashes remembers two keys that share an index hash
// and checks that each replays its own outcome, also after the older one
// is forgotten.
func TestKeysWithClashingHashes(t *testing.T) {
	e, err := New(Config{KeyWindowEntries: 4, KeyWindowMax: 100, ClosedHoldsKept: 10})
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := clashingPair(t, e.keys.seed, "key-")
	apply(t, e, create("A", "Ada", 100))
	first := Command{Op: OpDeposit, Key: k1, Account: "A", Amount: 1}
	apply(t, e, first)
	second := Command{Op: OpDeposit, Key: k2, Account: "A", Amount: 2}
	apply(t, e, second)
	for _, c := range []Command{first, second} {
		r := apply(t, e, c)[0]
		if !r.Replayed {
			t.Fatalf("key %s was not replayed: %+v", c.Key, r)
		}
	}
	if got := snapshotRestore(t, e); !apply(t, got, second)[0].Replayed {
		t.Fatal("restored engine forgot the clashing key")
	}
	// After entry 6, k1 (entry 2) falls out and k2 (entry 3) is still held.
	apply(t, e, deposit("A", 5))
	if r := apply(t, e, second)[0]; !r.Replayed {
		t.Fatalf("key %s forgotten too early: %+v", k2, r)
	}
	if r := apply(t, e, first)[0]; r.Replayed {
		t.Fatalf("key %s still remembered after the window: %+v", k1, r)
	}
}

func checkAccount(t *testing.T, e *Engine, number, name string, balance uint64) {
	t.Helper()
	got, ok := e.Get(number)
	if !ok || got.Name != name || got.Balance != balance {
		t.Fatalf("account %s = %+v (found %v), want name %q balance %d", number, got, ok, name, balance)
	}
}
