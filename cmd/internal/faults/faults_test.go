package faults

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zkbank/zkbank/cmd/internal/audit"
	"github.com/zkbank/zkbank/cmd/internal/devcluster"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/seal"
)

var (
	duration = flag.Duration("faults.duration", 20*time.Second, "how long the nemesis runs (make test-faults runs it longer)")
	seedFlag = flag.Uint64("faults.seed", 0, "seed of every random choice (0: from the clock)")
)

const (
	sessionTimeout = 2 * time.Second
	opening        = 100
)

// TestBankUnderFaults runs 3 ZooKeeper servers and 3 bankd processes (the
// binaries users run, under the dev cluster's supervisor, which restarts
// what dies), a bank workload, and a nemesis injecting one fault at a time;
// then it checks the history. Everything is kept in a folder when it fails.
func TestBankUnderFaults(t *testing.T) {
	t.Parallel() // beside TestBankUnderPartitions: both mostly wait (faults held, sessions expiring)
	rng := seeded(t)
	c := startCluster(t, runDir(t), rng)
	c.runBank(rng, func(h *History) []fault { return c.nemesis(h, rng, *duration) })
}

// seeded is the run's random source, from -faults.seed or the clock.
func seeded(t testing.TB) *rand.Rand {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -faults.seed %d)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed))
}

// runDir holds a run's history, logs and data dirs; it is kept when the
// test fails, or when ZKBANK_FAULTS_KEEP is set.
func runDir(t testing.TB) string {
	dir, err := os.MkdirTemp("", "zkbank-faults-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("ZKBANK_FAULTS_KEEP") != "" {
			t.Logf("kept the history, logs and data dirs in %s", dir)
		} else {
			os.RemoveAll(dir)
		}
	})
	return dir
}

// runBank runs the workload while nemesis injects faults, then heals,
// resends every key, waits for one state, audits each node's data dir and
// checks the history.
func (c *cluster) runBank(rng *rand.Rand, nemesis func(*History) []fault) {
	accounts := c.createAccounts("A", 5)
	holdAccounts := c.createAccounts("H", 2)
	h := NewHistory()
	c.h0 = h
	ctx, stopWork := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 4 {
		w := &worker{id: i, rng: rand.New(rand.NewPCG(rng.Uint64(), uint64(i+1))), nodes: c.endpoints, accounts: accounts, h: h,
			holdAccounts: holdAccounts, holds: map[uint64]heldBy{}}
		wg.Add(1)
		go func() { defer wg.Done(); w.run(ctx) }()
	}
	faults := nemesis(h)
	stopWork()
	wg.Wait()
	c.heal()
	ops := h.Ops()
	if err := Write(filepath.Join(filepath.Dir(c.dir), "history.jsonl"), ops); err != nil {
		c.t.Error(err)
	}
	c.pushKeysOutOfMemory(c.createAccounts("F", 1)[0])
	resolved := c.resend(ops)
	all := append(append([]string(nil), accounts...), holdAccounts...)
	final, digest := c.converge(all)
	if err := HoldsAccounted(ops, resolved, c.holds(holdAccounts[0]), c.held(holdAccounts), digest.TotalHeld); err != nil {
		c.t.Error(err)
	}
	c.stop()
	c.auditNodes(digest)
	c.check(ops, faults, resolved, all, final)
}

// holds lists every hold from or to an account, linearizably.
func (c *cluster) holds(acct string) []FinalHold {
	var out []FinalHold
	for after := uint64(0); ; {
		a := once(c.endpoints[0], "GET", fmt.Sprintf("/v1/accounts/%s/holds?limit=1000&after=%d&consistency=linearizable", acct, after), nil, "")
		var page wire.HoldList
		if a.status != 200 || json.Unmarshal(a.body, &page) != nil {
			c.t.Fatalf("holds of %s: %d %s", acct, a.status, a.body)
		}
		for _, h := range page.Holds {
			out = append(out, FinalHold{ID: h.ID, From: h.From, Amount: h.Amount, Captured: h.Captured, Status: h.Status})
		}
		if page.Next == 0 {
			return out
		}
		after = page.Next
	}
}

// held reads what each account's open holds reserve, linearizably.
func (c *cluster) held(accounts []string) map[string]uint64 {
	out := map[string]uint64{}
	for _, acct := range accounts {
		a := once(c.endpoints[0], "GET", "/v1/accounts/"+acct+"?consistency=linearizable", nil, "")
		var acc wire.Account
		if a.status != 200 || json.Unmarshal(a.body, &acc) != nil {
			c.t.Fatalf("read %s: %d %s", acct, a.status, a.body)
		}
		out[acct] = acc.Held
	}
	return out
}

type cluster struct {
	t         testing.TB
	cfg       devcluster.Config
	dir       string
	endpoints []string
	cancel    context.CancelFunc
	done      chan error
	h0        *History
}

// startCluster starts the cluster in dir; place, when given, puts its
// processes on a lab's hosts.
func startCluster(t testing.TB, dir string, rng *rand.Rand, place ...func(*devcluster.Config)) *cluster {
	bin := buildBankd(t, dir)
	for try := 0; ; try++ {
		base := 20000 + rng.IntN(9000)
		cfg := devcluster.Config{
			Dir: filepath.Join(dir, "cluster"), Nodes: 3, ZooKeepers: 3, ZKPort: base, APIPort: base + 3000, SessionTimeout: sessionTimeout, Bankd: bin,
			BankdArgs: []string{"--snapshot-every", "40", "--log-retain", "20", "--segment-size", "40",
				"--trim-interval", "300ms", "--write-timeout", "5s"},
			Logger: slog.New(slog.NewTextHandler(logWriter{t}, nil)),
		}
		for _, p := range place {
			p(&cfg)
		}
		c := &cluster{t: t, cfg: cfg, dir: cfg.Dir, endpoints: cfg.Endpoints(), done: make(chan error, 1)}
		ctx, cancel := context.WithCancel(context.Background())
		c.cancel = cancel
		ready := make(chan struct{})
		go func() { c.done <- devcluster.Up(ctx, cfg, func(*devcluster.State) { close(ready) }) }()
		select {
		case <-ready:
			t.Cleanup(c.stop)
			useCluster(t, cfg.Dir, c.endpoints)
			return c
		case err := <-c.done:
			cancel()
			if !strings.Contains(fmt.Sprint(err), "in use") || try == 4 {
				t.Fatalf("start the cluster: %v", err)
			}
		}
	}
}

// bankdEnv names a bankd binary built already (by the test that runs this
// one on a lab's client host, where go build cannot reach the network).
const bankdEnv = "ZKBANK_FAULTS_BANKD"

func buildBankd(t testing.TB, dir string) string {
	if bin := os.Getenv(bankdEnv); bin != "" {
		return bin
	}
	bin := filepath.Join(dir, "bankd")
	if out, err := exec.Command("go", "build", "-o", bin, "../../bankd").CombinedOutput(); err != nil {
		t.Fatalf("build bankd: %v\n%s", err, out)
	}
	return bin
}

func (c *cluster) stop() {
	c.cancel()
	select {
	case err := <-c.done:
		if err != nil {
			c.t.Errorf("cluster: %v", err)
		}
	case <-time.After(60 * time.Second):
		c.t.Error("cluster did not stop")
	}
	c.done <- nil // a second stop returns at once
}

func (c *cluster) createAccounts(prefix string, n int) []string {
	var out []string
	for i := range n {
		acct := fmt.Sprintf("%s-%d", prefix, i)
		a := send(context.Background(), c.endpoints, 0, "POST", "/v1/accounts", wire.CreateAccount{Account: acct, Name: "acct", Balance: opening}, "open-"+acct, 30*time.Second)
		if a.status != 201 {
			c.t.Fatalf("create %s: %d %s", acct, a.status, a.body)
		}
		out = append(out, acct)
	}
	return out
}

// state reads the supervisor's view: PIDs by process id.
func (c *cluster) state() map[string]devcluster.Proc {
	st, err := devcluster.ReadState(c.dir)
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]devcluster.Proc{}
	for _, p := range st.Procs {
		out[p.ID] = p
	}
	return out
}

// roles asks every node who leads and believes the newest epoch (a node
// just back from a partition may still name the leader before), and lists
// the other bankd.
func (c *cluster) roles() (leader string, followers []string) {
	l, followers := c.newestLeader(20 * time.Second)
	return l.ID, followers
}

// newestLeader is the leader of the newest epoch any node names, asking
// (once, then again until one names a leader or within has passed), and
// the other members.
func (c *cluster) newestLeader(within time.Duration) (wire.Leader, []string) {
	var best *wire.Cluster
	for end := time.Now().Add(within); ; time.Sleep(200 * time.Millisecond) {
		for _, ep := range c.endpoints {
			var cl wire.Cluster
			if a := once(ep, "GET", "/v1/cluster", nil, ""); a.status == 200 && json.Unmarshal(a.body, &cl) == nil && cl.Leader != nil {
				if best == nil || cl.Leader.Epoch > best.Leader.Epoch {
					best = &cl
				}
			}
		}
		if best != nil || !time.Now().Before(end) {
			break
		}
	}
	if best == nil {
		return wire.Leader{}, nil
	}
	var followers []string
	for _, m := range best.Members {
		if m.ID != best.Leader.ID {
			followers = append(followers, m.ID)
		}
	}
	return *best.Leader, followers
}

// heal waits until every process runs and every bankd is ready.
func (c *cluster) heal() {
	deadline := time.Now().Add(90 * time.Second)
	for {
		ready := 0
		for _, ep := range c.endpoints {
			if a := once(ep, "GET", "/readyz", nil, ""); a.status == 200 {
				ready++
			}
		}
		if leader, _ := c.roles(); ready == len(c.endpoints) && leader != "" && c.ensembleServing() {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster did not heal in 90s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ensembleServing reports whether a node sees every ZooKeeper server
// serving (leading, following, or alone): a fault injected while the ensemble
// still elects (after a cut that held its leader) would meet two at
// once, and a one-way cut then can keep it from a quorum for longer than
// any check here waits.
func (c *cluster) ensembleServing() bool {
	for _, ep := range c.endpoints {
		var cl wire.Cluster
		if a := once(ep, "GET", "/v1/cluster", nil, ""); a.status != 200 || json.Unmarshal(a.body, &cl) != nil || len(cl.ZooKeeper.Servers) == 0 {
			continue
		}
		for _, srv := range cl.ZooKeeper.Servers {
			if srv.Mode != "leader" && srv.Mode != "follower" && srv.Mode != "standalone" {
				return false
			}
		}
		return true
	}
	return false
}

// converge waits until every node reports the same digest, and returns
// the final balances (read linearizably) and that digest.
func (c *cluster) converge(accounts []string) (map[string]uint64, wire.Digest) {
	var d wire.Digest
	deadline := time.Now().Add(60 * time.Second)
	for {
		var ds []wire.Digest
		for _, ep := range c.endpoints {
			var one wire.Digest
			if a := once(ep, "GET", "/v1/digest", nil, ""); a.status == 200 && json.Unmarshal(a.body, &one) == nil {
				ds = append(ds, one)
			}
		}
		if len(ds) == len(c.endpoints) && ds[0] == ds[1] && ds[1] == ds[2] {
			d = ds[0]
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("nodes did not converge: %+v", ds)
		}
		time.Sleep(200 * time.Millisecond)
	}
	a := once(c.endpoints[0], "GET", "/v1/accounts?limit=1000&consistency=linearizable", nil, "")
	var list wire.AccountList
	if a.status != 200 || json.Unmarshal(a.body, &list) != nil {
		c.t.Fatalf("final read: %d %s", a.status, a.body)
	}
	final := map[string]uint64{}
	for _, acc := range list.Accounts {
		if slices.Contains(accounts, acc.Account) { // not the account pushKeysOutOfMemory filled
			final[acc.Account] = acc.Balance
		}
	}
	if len(final) != len(accounts) {
		c.t.Fatalf("final read: %d of %d accounts: %s", len(final), len(accounts), a.body)
	}
	c.t.Logf("converged at index %d, state hash %s", d.Index, d.StateHash)
	return final, d
}

// auditNodes replays each node's data dir (the cluster is stopped) and
// compares with the live digest.
func (c *cluster) auditNodes(d wire.Digest) {
	trust, err := seal.LoadDir(devcluster.CertsDir(c.dir))
	if err != nil {
		c.t.Fatal(err)
	}
	for i := range c.endpoints {
		dir := filepath.Join(c.dir, "nodes", fmt.Sprintf("n%d", i+1), "data")
		rep, err := audit.Replay(dir, audit.Options{To: d.Index, Trust: trust})
		// Entries after the snapshot it starts from must verify; a node
		// whose newest snapshot is at the final index has none left (its
		// snapshot's signature is checked all the same).
		if err != nil || rep.StateHash.String() != d.StateHash || (rep.Verified == 0 && rep.Index > rep.From) {
			c.t.Fatalf("audit of n%d: %+v %v; live digest %s", i+1, rep, err, d.StateHash)
		}
		c.t.Logf("audit of n%d: journal from index %d, %d signatures verified, state hash matches", i+1, rep.From+1, rep.Verified)
	}
}

// pushKeysOutOfMemory writes deposits under fresh keys into account until
// the in-memory window of every node holds none of the workload's keys,
// so that the resend after it is answered from each node's key store (and
// from the peer's store a node imported with a snapshot).
func (c *cluster) pushKeysOutOfMemory(account string) {
	before := c.clusterStatus(c.endpoints[0])
	const batch, clients = 1000, 4
	n := before.Keys.WindowKeys + batch
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			for i := w * batch; i < n; i += clients * batch {
				b := wire.Batch{Commands: make([]wire.Command, 0, batch)}
				for j := i; j < min(i+batch, n); j++ {
					b.Commands = append(b.Commands, wire.Command{Op: "deposit", Account: account, Amount: 1, Key: fmt.Sprintf("push-%d", j)})
				}
				if a := send(context.Background(), c.endpoints, w%len(c.endpoints), "POST", "/v1/batch", b, "", 30*time.Second); a.status != 200 {
					c.t.Errorf("pushing keys out of memory: %d %s", a.status, a.body)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, ep := range c.endpoints { // each applies the pushed entries in its own time
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			k := c.clusterStatus(ep).Keys
			if k.OldestIndex > before.LogHead && k.RetainMs > 0 {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("%s still holds keys of the workload in memory, or does not remember keys by time: %+v (the workload ended at %d)", ep, k, before.LogHead)
			}
		}
	}
}

// clusterStatus is GET /v1/cluster of the node at ep.
func (c *cluster) clusterStatus(ep string) wire.Cluster {
	var cl wire.Cluster
	if a := once(ep, "GET", "/v1/cluster", nil, ""); a.status != 200 || json.Unmarshal(a.body, &cl) != nil {
		c.t.Fatalf("cluster status of %s: %d %s", ep, a.status, a.body)
	}
	return cl
}

// resend sends every write again with its key, in batches: the engine
// answers each with the outcome first recorded under the key (replayed),
// or applies it now if it never was. pushKeysOutOfMemory ran first, so
// every answer comes from the nodes' key stores.
func (c *cluster) resend(ops []Op) Resolved {
	var writes []Op
	for _, op := range ops {
		if op.Key != "" {
			writes = append(writes, op)
		}
	}
	res := Resolved{}
	for start := 0; start < len(writes); start += 500 {
		chunk := writes[start:min(start+500, len(writes))]
		b := wire.Batch{Commands: make([]wire.Command, len(chunk))}
		for i, op := range chunk {
			b.Commands[i] = resendOf(op)
		}
		a := send(context.Background(), c.endpoints, 0, "POST", "/v1/batch", b, "", 30*time.Second)
		var br wire.BatchResult
		if a.status != 200 || json.Unmarshal(a.body, &br) != nil || len(br.Results) != len(chunk) {
			c.t.Fatalf("resend: %d %s", a.status, a.body)
		}
		for i, r := range br.Results {
			res[chunk[i].Key] = Resolution{Outcome: r.Code, Replayed: r.Replayed}
		}
	}
	return res
}

// resendOf is the batch command that sends op again: the same command,
// so that its key answers with the first outcome.
func resendOf(op Op) wire.Command {
	switch op.Kind {
	case KindCreateHold:
		return wire.Command{Op: "create_hold", Key: op.Key, Account: op.Account, To: op.To, Amount: op.Amount, ExpiresInMs: holdExpiryMs}
	case KindCaptureHold:
		return wire.Command{Op: "capture_hold", Key: op.Key, Hold: op.Hold, Amount: op.Amount}
	case KindVoidHold:
		return wire.Command{Op: "void_hold", Key: op.Key, Hold: op.Hold}
	}
	return wire.Command{Op: op.Kind, Key: op.Key, Account: op.Account, To: op.To, Amount: op.Amount}
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(b []byte) (int, error) {
	defer func() { recover() }()
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
