package systest

import (
	"strings"
	"testing"

	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// TestBadInputIsRefusedAndNothingApplied sends malformed and invalid
// requests to a follower and the leader: each gets its status and stable
// code, the node keeps serving, and the log does not move.
func TestBadInputIsRefusedAndNothingApplied(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 1), 2, nil)
	leader, _ := c.leader()
	mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: "1001", Name: "Ada", Balance: 100}, nil), 201)
	before := c.converged()

	long := strings.Repeat("x", 201)
	cases := []struct {
		name, method, path string
		body               any
		header             map[string]string
		status             int
		code               string
	}{
		{"not json", "POST", "/v1/accounts", "{name:", nil, 400, "invalid_json"},
		{"two objects", "POST", "/v1/accounts", `{"name":"a"}{"name":"b"}`, nil, 400, "invalid_json"},
		{"empty body", "POST", "/v1/transfers", "", nil, 400, "invalid_json"},
		{"array", "POST", "/v1/accounts", `[]`, nil, 400, "invalid_field"},
		{"unknown field", "POST", "/v1/accounts", `{"name":"a","colour":"red"}`, nil, 400, "unknown_field"},
		{"name wrong type", "POST", "/v1/accounts", `{"name":5}`, nil, 400, "invalid_field"},
		{"float amount", "POST", "/v1/accounts/1001/deposit", `{"amount":1.5}`, nil, 400, "invalid_amount"},
		{"exponent amount", "POST", "/v1/accounts/1001/deposit", `{"amount":1e3}`, nil, 400, "invalid_amount"},
		{"string amount", "POST", "/v1/accounts/1001/deposit", `{"amount":"10"}`, nil, 400, "invalid_amount"},
		{"negative amount", "POST", "/v1/accounts/1001/withdraw", `{"amount":-5}`, nil, 400, "invalid_amount"},
		{"zero amount", "POST", "/v1/accounts/1001/deposit", `{"amount":0}`, nil, 400, "invalid_amount"},
		{"missing amount", "POST", "/v1/accounts/1001/deposit", `{}`, nil, 400, "invalid_amount"},
		{"amount over 2^53", "POST", "/v1/accounts/1001/deposit", `{"amount":9007199254740992}`, nil, 400, "invalid_amount"},
		{"amount over 2^64", "POST", "/v1/accounts/1001/deposit", `{"amount":99999999999999999999999}`, nil, 400, "invalid_amount"},
		{"negative opening balance", "POST", "/v1/accounts", `{"name":"a","balance":-1}`, nil, 400, "invalid_amount"},
		{"long name", "POST", "/v1/accounts", `{"name":"` + long + `"}`, nil, 400, "invalid_name"},
		{"blank name", "POST", "/v1/accounts", `{"name":"   "}`, nil, 400, "invalid_name"},
		{"control in name", "POST", "/v1/accounts", `{"name":"a\u0007b"}`, nil, 400, "invalid_name"},
		{"bad account number", "POST", "/v1/accounts", `{"account":"no spaces","name":"a"}`, nil, 400, "invalid_account"},
		{"same account", "POST", "/v1/transfers", `{"from":"1001","to":"1001","amount":1}`, nil, 400, "same_account"},
		{"unknown account", "POST", "/v1/transfers", `{"from":"1001","to":"2002","amount":1}`, nil, 404, "account_not_found"},
		{"get unknown", "GET", "/v1/accounts/2002", nil, nil, 404, "account_not_found"},
		{"get bad number", "GET", "/v1/accounts/a%20b", nil, nil, 400, "invalid_account"},
		{"bad consistency", "GET", "/v1/accounts/1001?consistency=eventual", nil, nil, 400, "invalid_parameter"},
		{"bad min_index", "GET", "/v1/accounts/1001?min_index=-1", nil, nil, 400, "invalid_parameter"},
		{"bad limit", "GET", "/v1/accounts?limit=0", nil, nil, 400, "invalid_parameter"},
		{"huge limit", "GET", "/v1/accounts?limit=100000", nil, nil, 400, "invalid_parameter"},
		{"long key", "POST", "/v1/accounts/1001/deposit", `{"amount":1}`, map[string]string{wire.HeaderIdempotencyKey: strings.Repeat("k", 65)}, 400, "invalid_key"},
		{"text body", "POST", "/v1/accounts/1001/deposit", `{"amount":1}`, map[string]string{"Content-Type": "text/plain"}, 415, "unsupported_media_type"},
		{"body too large", "POST", "/v1/accounts", `{"name":"` + strings.Repeat("a", 2<<20) + `"}`, nil, 413, "body_too_large"},
		{"empty batch", "POST", "/v1/batch", `{"commands":[]}`, nil, 400, "invalid_field"},
		{"unknown op", "POST", "/v1/batch", `{"commands":[{"op":"steal","account":"1001"}]}`, nil, 400, "invalid_op"},
		{"one bad command", "POST", "/v1/batch", `{"commands":[{"op":"deposit","account":"1001","amount":1},{"op":"deposit","account":"1001","amount":0}]}`, nil, 400, "invalid_amount"},
		{"batch too large", "POST", "/v1/batch", bigBatch(1001), nil, 413, "batch_too_large"},
		{"no route", "GET", "/v2/accounts", nil, nil, 404, "not_found"},
		{"wrong method", "PUT", "/v1/accounts/1001", `{}`, nil, 405, "method_not_allowed"},
	}
	for _, tn := range c.nodes {
		for _, tc := range cases {
			r := call(t, tn, tc.method, tc.path, tc.body, tc.header)
			p := r.problem()
			if r.status != tc.status || p.Code != tc.code || r.header.Get("Content-Type") != wire.ContentProblem || p.Detail == "" {
				t.Errorf("%s on %s: got %d %s (%q), want %d %s", tc.name, tn.id, r.status, p.Code, p.Detail, tc.status, tc.code)
			}
		}
	}
	// Only the transfer to an unknown account reached the log (once per
	// node): whether an account exists is decided at apply, and the
	// rejection is recorded like any command. It changed no balance.
	after := c.converged()
	if after.Index != before.Index+uint64(len(c.nodes)) {
		t.Fatalf("log moved from %d to %d; want %d entries, one per node", before.Index, after.Index, len(c.nodes))
	}
	if after.TotalBalance != before.TotalBalance || after.Accounts != before.Accounts {
		t.Fatalf("state changed: before %+v after %+v", before, after)
	}
	r := call(t, leader, "GET", "/v1/accounts/1001", nil, nil)
	if a := decode[wire.Account](t, r); a.Balance != 100 || a.UpdatedIndex != a.CreatedIndex {
		t.Fatalf("account changed: %+v", a)
	}
}

func bigBatch(n int) string {
	var b strings.Builder
	b.WriteString(`{"commands":[`)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"op":"deposit","account":"1001","amount":1}`)
	}
	b.WriteString("]}")
	return b.String()
}
