package guide

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/zkbank/zkbank/cmd/internal/faults"
	"github.com/zkbank/zkbank/cmd/internal/tlsconf"
	"github.com/zkbank/zkbank/cmd/internal/wire"
)

// load is the bank workload that runs while the guide's procedures
// change the cluster: transfers, deposits and withdrawals on a few
// accounts from the workstation, each with its own key, retried through
// the other nodes, recorded as a faults.History for its checkers.
type load struct {
	s        *site
	hc       *http.Client
	nodes    []string
	accounts []string
	h        *faults.History
	stop     context.CancelFunc
	wg       sync.WaitGroup
}

const opening = 1000

// The workload's size: a steady trickle through every procedure (about
// 20 writes a second), light enough that the two-core machine that runs
// make test keeps its time for the procedures themselves.
const (
	loadWorkers = 2
	loadPause   = 100 * time.Millisecond
)

func (s *site) startLoad() *load {
	ws := s.lab.Host("ws")
	certs := filepath.Join(s.workstation(), "certs")
	mat, err := tlsconf.Load(tlsconf.Files{Cert: filepath.Join(certs, "client-ops.crt"), Key: filepath.Join(certs, "client-ops.key"), CA: filepath.Join(certs, "ca.crt")})
	if err != nil {
		s.t.Fatal(err)
	}
	l := &load{s: s, h: faults.NewHistory(),
		hc: &http.Client{Transport: &http.Transport{DialContext: ws.DialContext, TLSClientConfig: mat.Client(nil), MaxIdleConnsPerHost: 8}}}
	for _, h := range s.hosts[:3] {
		l.nodes = append(l.nodes, h.Addr+":8443")
	}
	for i := range 3 {
		acct := fmt.Sprintf("L-%d", i)
		if r, ok := l.command(wire.Command{Op: "create_account", Key: "open-" + acct, Account: acct, Name: acct, Balance: opening}); !ok || r.Code != faults.OutcomeOK {
			s.t.Fatalf("load: create %s: %+v", acct, r)
		}
		l.accounts = append(l.accounts, acct)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.stop = cancel
	for w := range loadWorkers {
		l.wg.Add(1)
		go func() { defer l.wg.Done(); l.work(ctx, w) }()
	}
	return l
}

func (l *load) work(ctx context.Context, w int) {
	rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
	for seq := 0; ctx.Err() == nil; seq++ {
		a, b := l.accounts[rng.IntN(3)], l.accounts[rng.IntN(3)]
		op := faults.Op{Worker: w, Key: fmt.Sprintf("load-%d-%d", w, seq), Account: a, Amount: uint64(1 + rng.IntN(50))}
		cmd := wire.Command{Key: op.Key, Account: a, Amount: op.Amount}
		switch {
		case a != b:
			op.Kind, op.To, cmd.Op, cmd.From, cmd.To, cmd.Account = faults.KindTransfer, b, "transfer", a, b, ""
		case rng.IntN(2) == 0:
			op.Kind, cmd.Op = faults.KindDeposit, "deposit"
		default:
			op.Kind, cmd.Op = faults.KindWithdraw, "withdraw"
		}
		op.Call = l.h.Now()
		r, ok := l.command(cmd)
		op.Return, op.Outcome = l.h.Now(), r.Code
		if !ok {
			op.Outcome = faults.OutcomeUnknown
		}
		if op.Outcome == faults.OutcomeOK {
			op.Balances = map[string]uint64{}
			for _, a := range r.Accounts {
				op.Balances[a.Account] = a.Balance
			}
		}
		l.h.Add(op)
		time.Sleep(loadPause)
	}
}

// command sends one command as a batch of one; false when no node gave
// a definite answer.
func (l *load) command(c wire.Command) (wire.Result, bool) {
	br, ok := l.batch(wire.Batch{Commands: []wire.Command{c}})
	if !ok {
		return wire.Result{}, false
	}
	return br.Results[0], true
}

// batch sends b through the nodes in turn for up to 20 s, until one
// answers it whole.
func (l *load) batch(b wire.Batch) (wire.BatchResult, bool) {
	body, _ := json.Marshal(b)
	end := time.Now().Add(20 * time.Second)
	for try := 0; time.Now().Before(end); try++ {
		var br wire.BatchResult
		if status := l.post(l.nodes[try%len(l.nodes)], "/v1/batch", body, &br); status == 200 && len(br.Results) == len(b.Commands) {
			return br, true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return wire.BatchResult{}, false
}

func (l *load) post(node, path string, body []byte, into any) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", "https://"+node+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.hc.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if json.Unmarshal(b, into) != nil {
		return 0
	}
	return resp.StatusCode
}

// check stops the load, resends every key, reads the final balances
// linearizably, and runs the fault suite's checkers on the history:
// nothing acknowledged lost or applied twice, every account linearizable.
func (l *load) check() {
	l.stop()
	l.wg.Wait()
	ops := l.h.Ops()
	resolved := l.resend(ops)
	final := map[string]uint64{}
	open := map[string]uint64{}
	for _, a := range l.accounts {
		var acc wire.Account
		if status := l.get(l.nodes[0], "/v1/accounts/"+a+"?consistency=linearizable", &acc); status != 200 {
			l.s.t.Fatalf("load: final read of %s: %d", a, status)
		}
		final[a], open[a] = acc.Balance, opening
	}
	lost, err := faults.ExactlyOnce(ops, resolved, open, final)
	if err != nil || lost > 0 {
		l.s.t.Fatalf("load: %d lost: %v", lost, err)
	}
	if _, err := faults.Linearizable(ops, open, time.Minute); err != nil {
		l.s.t.Fatal(err)
	}
	l.sameState()
	acked := 0
	for _, op := range ops {
		if op.Outcome == faults.OutcomeOK {
			acked++
		}
	}
	l.s.t.Logf("load: %d writes while the cluster changed, %d acknowledged, none lost or applied twice, every account linearizable", len(ops), acked)
}

// resend sends every write again with its key, in batches of 500: each
// answers with the outcome first recorded under its key (replayed), or
// applies now if it never was.
func (l *load) resend(ops []faults.Op) faults.Resolved {
	res := faults.Resolved{}
	for start := 0; start < len(ops); start += 500 {
		chunk := ops[start:min(start+500, len(ops))]
		b := wire.Batch{Commands: make([]wire.Command, len(chunk))}
		for i, op := range chunk {
			c := wire.Command{Op: op.Kind, Key: op.Key, Account: op.Account, Amount: op.Amount}
			if op.Kind == faults.KindTransfer {
				c.Account, c.From, c.To = "", op.Account, op.To
			}
			b.Commands[i] = c
		}
		br, ok := l.batch(b)
		if !ok {
			l.s.t.Fatalf("load: the resend of %d commands got no answer", len(chunk))
		}
		for i, r := range br.Results {
			res[chunk[i].Key] = faults.Resolution{Outcome: r.Code, Replayed: r.Replayed}
		}
	}
	return res
}

// sameState waits until every node reports one state hash.
func (l *load) sameState() {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ds []wire.Digest
		for _, n := range l.nodes {
			var d wire.Digest
			if l.get(n, "/v1/digest", &d) == 200 {
				ds = append(ds, d)
			}
		}
		if len(ds) == len(l.nodes) && ds[0] == ds[1] && ds[1] == ds[2] {
			l.s.t.Logf("load: every node at index %d, state hash %s", ds[0].Index, ds[0].StateHash)
			return
		}
		if time.Now().After(deadline) {
			l.s.t.Fatalf("load: the nodes did not reach one state: %+v", ds)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (l *load) get(node, path string, into any) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+node+path, nil)
	resp, err := l.hc.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if json.NewDecoder(resp.Body).Decode(into) != nil {
		return 0
	}
	return resp.StatusCode
}
