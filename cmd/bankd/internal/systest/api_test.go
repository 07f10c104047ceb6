package systest

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// TestEveryCallThroughEveryNode drives the whole API through each of the
// three nodes in turn, so followers forward writes, and checks
// read-your-writes with min_index on another node, linearizable reads, and
// that all nodes end with the same digest.
func TestEveryCallThroughEveryNode(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 3), 3, nil)
	var total uint64
	for i, tn := range c.nodes {
		other := c.nodes[(i+1)%len(c.nodes)]
		a, b := fmt.Sprintf("A-%d", i), fmt.Sprintf("B-%d", i)

		r := call(t, tn, "POST", "/v1/accounts", wire.CreateAccount{Account: a, Name: "Ada", Balance: 1000}, nil)
		if r.status != 201 {
			t.Fatalf("%s create: %s", tn.id, r)
		}
		created := decode[wire.Account](t, r)
		if created.Account != a || created.Balance != 1000 || created.CreatedIndex == 0 {
			t.Fatalf("created %+v", created)
		}
		index := r.header.Get(wire.HeaderIndex)
		// Read-your-writes through another node.
		r = call(t, other, "GET", "/v1/accounts/"+a+"?min_index="+index, nil, nil)
		if r.status != 200 || decode[wire.Account](t, r).Balance != 1000 {
			t.Fatalf("%s read after write on %s: %s", tn.id, other.id, r)
		}
		// A number assigned by the cluster.
		r = call(t, tn, "POST", "/v1/accounts", wire.CreateAccount{Name: " Bob "}, nil)
		if r.status != 201 {
			t.Fatalf("create without number: %s", r)
		}
		assigned := decode[wire.Account](t, r)
		if len(assigned.Account) != 10 || assigned.Name != "Bob" {
			t.Fatalf("assigned %+v", assigned)
		}
		mustOK(t, call(t, tn, "POST", "/v1/accounts", wire.CreateAccount{Account: b, Name: "Bea"}, nil), 201)
		mustOK(t, call(t, tn, "POST", "/v1/accounts/"+a+"/deposit", wire.Amount{Amount: 500}, nil), 200)
		mustOK(t, call(t, tn, "POST", "/v1/accounts/"+a+"/withdraw", wire.Amount{Amount: 200}, nil), 200)
		r = call(t, tn, "POST", "/v1/transfers", wire.Transfer{From: a, To: b, Amount: 300}, nil)
		mustOK(t, r, 200)
		tr := decode[wire.TransferResult](t, r)
		if tr.From.Balance != 1000 || tr.To.Balance != 300 {
			t.Fatalf("transfer result %+v", tr)
		}
		mustOK(t, call(t, tn, "POST", "/v1/accounts/"+b+"/rename", wire.Rename{Name: "Beatrice"}, nil), 200)
		r = call(t, tn, "DELETE", "/v1/accounts/"+b, nil, nil)
		if p := r.problem(); r.status != 409 || p.Code != "balance_not_zero" {
			t.Fatalf("delete with money: %s", r)
		}
		mustOK(t, call(t, tn, "POST", "/v1/accounts/"+b+"/withdraw", wire.Amount{Amount: 300}, nil), 200)
		r = call(t, tn, "DELETE", "/v1/accounts/"+b, nil, nil)
		mustOK(t, r, 200)
		if d := decode[wire.Account](t, r); d.Account != b || d.Balance != 0 || d.Name != "Beatrice" {
			t.Fatalf("deleted %+v", d)
		}
		r = call(t, tn, "POST", "/v1/accounts/"+a+"/withdraw", wire.Amount{Amount: 1_000_000}, nil)
		if p := r.problem(); r.status != 409 || p.Code != "insufficient_funds" {
			t.Fatalf("overdraft: %s", r)
		}
		// Linearizable read on a follower sees the last write at once.
		r = call(t, other, "GET", "/v1/accounts/"+a+"?consistency=linearizable", nil, nil)
		if r.status != 200 || decode[wire.Account](t, r).Balance != 1000 {
			t.Fatalf("linearizable read on %s: %s", other.id, r)
		}
		total += 1000
	}
	checkBatch(t, c)
	checkList(t, c)
	d := c.converged()
	if d.TotalBalance != total+60 || d.Accounts != 9 {
		t.Fatalf("digest %+v, want total %d and 9 accounts", d, total+60)
	}
}

// checkBatch sends one batch through a follower: each command succeeds or
// is rejected on its own, in order, and a retry with the same key changes
// nothing.
func checkBatch(t *testing.T, c *cluster) {
	batch := wire.Batch{Commands: []wire.Command{
		{Op: "create_account", Account: "C-1", Name: "Cy", Balance: 10},
		{Op: "create_account", Account: "C-2", Name: "Di", Balance: 50},
		{Op: "transfer", Account: "C-1", To: "C-2", Amount: 100}, // rejected
		{Op: "transfer", From: "C-2", To: "C-1", Amount: 20},
		{Op: "deposit", Account: "nobody", Amount: 1}, // rejected
		{Op: "create_account", Account: "C-3", Name: "Ed"},
	}}
	header := map[string]string{wire.HeaderIdempotencyKey: "batch-1"}
	follower := c.followers()[0]
	first := decode[wire.BatchResult](t, call(t, follower, "POST", "/v1/batch", batch, header))
	want := []string{"ok", "ok", "insufficient_funds", "ok", "account_not_found", "ok"}
	for i, res := range first.Results {
		if res.Code != want[i] || res.Replayed {
			t.Fatalf("batch result %d: %+v, want %s", i, res, want[i])
		}
	}
	if acc := first.Results[3].Accounts; len(acc) != 2 || acc[0].Balance != 30 || acc[1].Balance != 30 {
		t.Fatalf("transfer in batch left %+v", acc)
	}
	again := decode[wire.BatchResult](t, call(t, c.nodes[0], "POST", "/v1/batch", batch, header))
	for i, res := range again.Results {
		if res.Code != want[i] || !res.Replayed {
			t.Fatalf("retried batch result %d: %+v", i, res)
		}
	}
}

// checkList pages through all accounts two at a time from every node.
func checkList(t *testing.T, c *cluster) {
	index := c.converged().Index
	for _, tn := range c.nodes {
		var got []string
		after := ""
		for {
			r := call(t, tn, "GET", "/v1/accounts?limit=2&after="+after+"&min_index="+strconv.FormatUint(index, 10), nil, nil)
			page := decode[wire.AccountList](t, r)
			for _, a := range page.Accounts {
				got = append(got, a.Account)
			}
			if page.Next == "" {
				break
			}
			after = page.Next
		}
		if len(got) != 9 {
			t.Fatalf("%s listed %v", tn.id, got)
		}
		for i := 1; i < len(got); i++ {
			if got[i-1] >= got[i] {
				t.Fatalf("%s listed out of order: %v", tn.id, got)
			}
		}
	}
}

func mustOK(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("got %s, want %d", r, status)
	}
}
