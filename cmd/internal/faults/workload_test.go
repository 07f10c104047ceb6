package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/zkbank/zkbank/cmd/internal/devcluster"
	"github.com/zkbank/zkbank/cmd/internal/tlsconf"
	"github.com/zkbank/zkbank/cmd/internal/wire"
)

// httpClient calls the cluster as its admin, over TLS (useCluster).
var httpClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

// useCluster makes the workload's calls go to the dev cluster in dir as
// its admin.
func useCluster(t testing.TB, dir string, endpoints []string) {
	mat, err := tlsconf.Load(devcluster.AdminFiles(dir))
	if err != nil {
		t.Fatal(err)
	}
	httpClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, TLSClientConfig: mat.Client(nil)}}
	bearerToken = devcluster.AdminToken(dir)
	a := send(context.Background(), endpoints, 0, "POST", "/v1/admin/tokens", wire.TokenRequest{Name: "faults-teller", Role: "teller"}, "faults-teller", 20*time.Second)
	var tok wire.Token
	if a.status != 201 || json.Unmarshal(a.body, &tok) != nil || tok.Token == "" {
		t.Fatalf("a teller token for the workload: %d %s", a.status, a.body)
	}
	bearerToken = tok.Token // the workload is a teller's, as a bank's clients are
}

// bearerToken is what the workload authenticates with.
var bearerToken string

// answer is the last reply of a (possibly retried) request.
type answer struct {
	status int
	body   []byte
	index  uint64
	node   string
	tries  int
	err    error // why there is no answer (status 0)
}

// definite: a 2xx, or a 4xx rejection other than rate_limited (429,
// which says to try again).
func (a answer) definite() bool {
	return a.status >= 200 && a.status < 500 && a.status != http.StatusTooManyRequests
}

// send posts or gets through the nodes in turn, starting at first, until a
// definite answer (2xx, or a 4xx rejection) or the deadline. The key stays
// the same on every try.
func send(ctx context.Context, nodes []string, first int, method, path string, body any, key string, deadline time.Duration) answer {
	var data []byte
	if body != nil {
		data, _ = json.Marshal(body)
	}
	end := time.Now().Add(deadline)
	var a answer
	for try := 0; time.Now().Before(end) && ctx.Err() == nil; try++ {
		a = once(nodes[(first+try)%len(nodes)], method, path, data, key)
		a.tries = try + 1
		if a.definite() {
			return a
		}
		if a.status == 0 || isRetryable(a.body) {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		return a
	}
	return a
}

func isRetryable(body []byte) bool {
	var p wire.Problem
	return json.Unmarshal(body, &p) == nil && p.Retryable
}

func once(node, method, path string, data []byte, key string) answer {
	return onceWithin(1500*time.Millisecond, node, method, path, data, key) // a paused node must not stall the worker
}

func onceWithin(timeout time.Duration, node, method, path string, data []byte, key string) answer {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, "https://"+node+path, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set(wire.HeaderIdempotencyKey, key)
	}
	req.Header.Set("Authorization", "Bearer "+bearerToken)
	resp, err := httpClient.Do(req)
	if err != nil {
		return answer{node: node, err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{node: node, err: err}
	}
	var index uint64
	fmt.Sscan(resp.Header.Get(wire.HeaderIndex), &index)
	return answer{status: resp.StatusCode, body: b, index: index, node: node}
}

// worker runs random operations on a few accounts until ctx ends.
type worker struct {
	id       int
	rng      *rand.Rand
	nodes    []string
	accounts []string
	h        *History
	seq      int
	acked    uint64 // index of this worker's last acknowledged write

	holdAccounts []string          // the two accounts the hold ops use, and only they
	holds        map[uint64]heldBy // the holds this worker created and has not closed
}

// heldBy is what a worker knows of a hold it created.
type heldBy struct {
	from, to string
	amount   uint64
}

// holdExpiryMs is the expiry of the workload's holds: far past a run, so
// that every hold closes by a capture or a void (and the resend of a
// create is the same command).
const holdExpiryMs = 24 * 3600 * 1000

func (w *worker) run(ctx context.Context) {
	for ctx.Err() == nil {
		w.one(ctx)
		time.Sleep(time.Duration(10+w.rng.IntN(30)) * time.Millisecond)
	}
}

func (w *worker) one(ctx context.Context) {
	w.seq++
	key := fmt.Sprintf("w%d-%d", w.id, w.seq)
	acct := w.accounts[w.rng.IntN(len(w.accounts))]
	amount := uint64(1 + w.rng.IntN(60))
	switch p := w.rng.IntN(100); {
	case p < 45:
		to := w.accounts[w.rng.IntN(len(w.accounts))]
		for to == acct {
			to = w.accounts[w.rng.IntN(len(w.accounts))]
		}
		w.write(ctx, Op{Kind: KindTransfer, Key: key, Account: acct, To: to, Amount: amount}, "/v1/transfers", wire.Transfer{From: acct, To: to, Amount: amount})
	case p < 60:
		w.write(ctx, Op{Kind: KindDeposit, Key: key, Account: acct, Amount: amount}, "/v1/accounts/"+acct+"/deposit", wire.Amount{Amount: amount})
	case p < 72:
		w.write(ctx, Op{Kind: KindWithdraw, Key: key, Account: acct, Amount: amount}, "/v1/accounts/"+acct+"/withdraw", wire.Amount{Amount: amount})
	case p < 80:
		w.holdOp(ctx, key)
		w.readOne(ctx, acct)
	case p < 85:
		w.readAfter(acct)
	default:
		w.readAll(ctx, map[bool]string{true: "linearizable", false: "local"}[w.rng.IntN(2) == 0])
	}
}

// holdOp creates a hold between the hold accounts, or captures part of
// or voids one this worker created.
func (w *worker) holdOp(ctx context.Context, key string) {
	for id, h := range w.holds { // any one of them
		delete(w.holds, id)
		path := fmt.Sprintf("/v1/holds/%d/", id)
		if w.rng.IntN(2) == 0 {
			amount := uint64(1 + w.rng.IntN(int(h.amount)))
			w.write(ctx, Op{Kind: KindCaptureHold, Key: key, Account: h.from, To: h.to, Amount: amount, Hold: id}, path+"capture", wire.Amount{Amount: amount})
		} else {
			w.write(ctx, Op{Kind: KindVoidHold, Key: key, Account: h.from, To: h.to, Hold: id}, path+"void", nil)
		}
		return
	}
	i := w.rng.IntN(2)
	from, to := w.holdAccounts[i], w.holdAccounts[1-i]
	amount := uint64(1 + w.rng.IntN(30))
	op := w.write(ctx, Op{Kind: KindCreateHold, Key: key, Account: from, To: to, Amount: amount}, "/v1/holds",
		wire.CreateHold{From: from, To: to, Amount: amount, ExpiresInMs: holdExpiryMs})
	if op.Outcome == OutcomeOK && op.Hold != 0 {
		w.holds[op.Hold] = heldBy{from, to, amount}
	}
}

func (w *worker) write(ctx context.Context, op Op, path string, body any) Op {
	op.Worker, op.Call = w.id, w.h.Now()
	a := send(ctx, w.nodes, w.rng.IntN(len(w.nodes)), "POST", path, body, op.Key, 20*time.Second)
	op.Return, op.Node, op.Tries, op.Index = w.h.Now(), a.node, a.tries, a.index
	switch {
	case a.status == 200 || a.status == 201:
		op.Outcome, op.Balances = OutcomeOK, balancesOf(a.body)
		w.acked = max(w.acked, a.index)
		if op.Kind == KindCreateHold {
			var hr wire.HoldResult
			json.Unmarshal(a.body, &hr)
			op.Hold = hr.Hold.ID
		}
	case a.definite():
		var p wire.Problem
		json.Unmarshal(a.body, &p)
		op.Outcome = p.Code
	default:
		op.Outcome = OutcomeUnknown
	}
	w.h.Add(op)
	return op
}

func balancesOf(body []byte) map[string]uint64 {
	out := map[string]uint64{}
	var hr wire.HoldResult
	if json.Unmarshal(body, &hr) == nil && hr.Hold.ID != 0 {
		for _, a := range []*wire.Account{hr.From, hr.To} {
			if a != nil {
				out[a.Account] = a.Balance
			}
		}
		return out
	}
	var tr wire.TransferResult
	if json.Unmarshal(body, &tr) == nil && tr.From.Account != "" {
		out[tr.From.Account], out[tr.To.Account] = tr.From.Balance, tr.To.Balance
		return out
	}
	var a wire.Account
	if json.Unmarshal(body, &a) == nil {
		out[a.Account] = a.Balance
	}
	return out
}

func (w *worker) readOne(ctx context.Context, acct string) {
	op := Op{Worker: w.id, Kind: KindRead, Account: acct, Consistency: "linearizable", Call: w.h.Now()}
	a := send(ctx, w.nodes, w.rng.IntN(len(w.nodes)), "GET", "/v1/accounts/"+acct+"?consistency=linearizable", nil, "", 10*time.Second)
	op.Return, op.Node, op.Index = w.h.Now(), a.node, a.index
	if a.status != 200 {
		return // a read that failed says nothing
	}
	op.Outcome, op.Balances = OutcomeOK, balancesOf(a.body)
	w.h.Add(op)
}

// readAfter reads one account from one node at or after this worker's
// last acknowledged write, once: a node that cannot answer that fresh
// must wait (up to its read timeout) or refuse.
func (w *worker) readAfter(acct string) {
	node := w.nodes[w.rng.IntN(len(w.nodes))]
	op := Op{Worker: w.id, Kind: KindReadAfter, Account: acct, MinIndex: w.acked, Node: node, Call: w.h.Now()}
	a := once(node, "GET", fmt.Sprintf("/v1/accounts/%s?min_index=%d", acct, w.acked), nil, "")
	op.Return, op.Index = w.h.Now(), a.index
	if a.status != 200 {
		return
	}
	op.Outcome, op.Balances = OutcomeOK, balancesOf(a.body)
	w.h.Add(op)
}

// readAll lists every account from one node, in one answer at one index.
func (w *worker) readAll(ctx context.Context, consistency string) {
	node := w.nodes[w.rng.IntN(len(w.nodes))]
	op := Op{Worker: w.id, Kind: KindReadAll, Consistency: consistency, Node: node, Call: w.h.Now()}
	a := once(node, "GET", "/v1/accounts?limit=1000&consistency="+consistency, nil, "")
	op.Return, op.Index = w.h.Now(), a.index
	var list wire.AccountList
	if a.status != 200 || json.Unmarshal(a.body, &list) != nil {
		return
	}
	op.Outcome, op.Balances = OutcomeOK, map[string]uint64{}
	for _, acc := range list.Accounts {
		op.Balances[acc.Account] = acc.Balance
	}
	w.h.Add(op)
}
