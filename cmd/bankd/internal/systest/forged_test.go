package systest

import (
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkbank/zkbank/certs"
	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
	"github.com/zkbank/zkbank/zkcoord"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// forger writes entries at the head of a cluster's log as ZooKeeper's
// super user: what a ZooKeeper operator, or whoever has their password,
// can do.
type forger struct {
	t   *testing.T
	c   *cluster
	log *zkcoord.Log
}

func newForger(t *testing.T, c *cluster) *forger {
	return &forger{t: t, c: c, log: c.superSession().Log(0)}
}

// write puts the bytes make returns for the head it read at the next
// index, retrying while the bank's leader takes that index first, and
// returns the index.
func (f *forger) write(make func(head *entry.Envelope) []byte) uint64 {
	f.t.Helper()
	for range 200 {
		last, err := f.log.LastIndex()
		if err != nil {
			f.t.Fatal(err)
		}
		head, err := f.log.Read(last)
		if err != nil {
			continue // trimmed or half-written: read again
		}
		_, err = f.log.Session().Conn.Create(f.log.EntryPath(last+1), make(head), 0, zk.WorldACL(zk.PermAll))
		if err == nil {
			return last + 1
		}
		if !errors.Is(err, zk.ErrNodeExists) && !errors.Is(err, zk.ErrNoNode) {
			f.t.Fatal(err)
		}
	}
	f.t.Fatal("never got to write at the head")
	return 0
}

// sealedBy is a well-formed term entry after head, with the right
// prev_hash and the cluster's real data key (the worst case: the keys
// leaked), signed by key and cert, depositing into account "FORGED".
func (f *forger) sealedBy(key crypto.Signer, cert []byte) func(*entry.Envelope) []byte {
	return func(head *entry.Envelope) []byte {
		body, err := engine.EncodeCommands([]engine.Command{{Op: engine.OpCreateAccount, Key: fmt.Sprint("forged-", head.Index), Account: "FORGED", Name: "Mallory", Amount: 1_000_000}})
		if err != nil {
			f.t.Fatal(err)
		}
		e := &entry.Envelope{Index: head.Index + 1, Epoch: head.Epoch + 1, PrevHash: head.Hash(), TimeMs: head.TimeMs + 1, BodyVersion: head.BodyVersion, Body: body}
		if err := f.c.trust.NewTerm(key, cert, nil).Seal(e); err != nil {
			f.t.Fatal(err)
		}
		raw, err := entry.Encode(e)
		if err != nil {
			f.t.Fatal(err)
		}
		return raw
	}
}

// identity is the key and certificate of files made by the certs package.
func identity(t *testing.T, crt, key string) (crypto.Signer, []byte) {
	pair, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	return pair.PrivateKey.(crypto.Signer), pair.Leaf.Raw
}

// TestForgedEntriesAtTheHeadAreNeverApplied writes, while the bank takes
// writes, junk and then well-formed entries signed by an outsider, by a
// client certificate of the cluster's CA and by a revoked node
// certificate at the head of the log. None is applied anywhere; writes
// resume; every node converges to one state.
func TestForgedEntriesAtTheHeadAreNeverApplied(t *testing.T) {
	ens := zktest.Shared(t, 1)
	c := newCluster(t, ens, 3, nil)
	leader, _ := c.leader()
	mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: "L-1", Name: "Load"}, nil), 201)

	other := t.TempDir()
	otherCA, err := certs.NewCA(other, "outsider")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := otherCA.IssueNode(other, "n1", []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	outKey, outCert := identity(t, first(certs.NodeFiles(other, "n1")), second(certs.NodeFiles(other, "n1")))
	if _, err := c.ca.IssueClient(c.certs, "mallory", "admin"); err != nil {
		t.Fatal(err)
	}
	clientKey, clientCert := identity(t, first(certs.ClientFiles(c.certs, "mallory")), second(certs.ClientFiles(c.certs, "mallory")))
	revoked, err := c.ca.IssueNode(c.certs, "n9", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, call(t, leader, "POST", "/v1/admin/revocations", wire.Revocation{Serial: certs.Serial(revoked)}, nil), 200)
	revKey, revCert := identity(t, first(certs.NodeFiles(c.certs, "n9")), second(certs.NodeFiles(c.certs, "n9")))

	var deposits atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { depositUntil(c, stop, &deposits) })
	defer func() { close(stop); wg.Wait() }()

	f := newForger(t, c)
	for _, forgery := range []struct {
		name string
		make func(*entry.Envelope) []byte
	}{
		{"garbage", func(*entry.Envelope) []byte { return []byte("garbage") }},
		{"an outsider's node certificate", f.sealedBy(outKey, outCert)},
		{"a client certificate of the cluster CA", f.sealedBy(clientKey, clientCert)},
		{"a revoked node certificate", f.sealedBy(revKey, revCert)},
	} {
		before := deposits.Load()
		started := time.Now()
		index := f.write(forgery.make)
		zktest.Eventually(t, 30*time.Second, "deposits after "+forgery.name, func() bool { return deposits.Load() > before+20 })
		t.Logf("%s at index %d: writes resumed after %v", forgery.name, index, time.Since(started).Round(time.Millisecond))
	}
	close(stop)
	wg.Wait()
	stop = make(chan struct{}) // for the deferred close
	d := c.converged()
	for _, tn := range c.nodes {
		if r := call(t, tn, "GET", fmt.Sprintf("/v1/accounts/FORGED?min_index=%d", d.Index), nil, nil); r.status != 404 {
			t.Fatalf("%s has the forged account: %s", tn.id, r)
		}
	}
	acct := decode[wire.Account](t, call(t, leader, "GET", fmt.Sprintf("/v1/accounts/L-1?min_index=%d", d.Index), nil, nil))
	if acct.Balance != uint64(deposits.Load()) {
		t.Fatalf("L-1 holds %d after %d acknowledged deposits of 1", acct.Balance, deposits.Load())
	}
}

func first(a, _ string) string  { return a }
func second(_, b string) string { return b }

// depositUntil deposits 1 into L-1 over and over through every node, each
// with its own key, retrying a deposit whose outcome was unknown with the
// same key, and counts those acknowledged.
func depositUntil(c *cluster, stop <-chan struct{}, acked *atomic.Int64) {
	for i := 0; ; i++ {
		key := fmt.Sprint("dep-", i)
		for try := 0; ; try++ {
			select {
			case <-stop:
				return
			default:
			}
			tn := c.nodes[(i+try)%len(c.nodes)]
			r, err := tryCall(tn, "POST", "/v1/accounts/L-1/deposit", wire.Amount{Amount: 1}, map[string]string{wire.HeaderIdempotencyKey: key})
			if err == nil && r.status == 200 {
				acked.Add(1)
				break
			}
			if err == nil && r.status < 500 && r.status != 429 && !strings.Contains(r.String(), "not_leader") {
				c.t.Errorf("deposit %s: %s", key, r)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestANewLeaderHaltsRatherThanDeleteAnAppliedEntry: n3 comes back with
// a trust that verifies none of the log's new entries (another cluster
// id) and becomes leader while n2, which applied them, is live. n3 must
// halt, not delete what n2 applied; n2 then leads on, and the entries are
// still there.
func TestANewLeaderHaltsRatherThanDeleteAnAppliedEntry(t *testing.T) {
	var blind atomic.Bool
	c := newCluster(t, zktest.Shared(t, 1), 3, func(cfg *node.Config) {
		if cfg.ID == "n3" && blind.Load() {
			other := *cfg.Seal.Trust
			other.Cluster = []byte("not-this-cluster")
			cfg.Seal = &node.SealConfig{Trust: &other, Identity: cfg.Seal.Identity}
		}
	})
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	if l, _ := c.leader(); l != n1 {
		t.Fatalf("leader is %s, want n1", l.id)
	}
	c.stop(n3)
	blind.Store(true)
	mustOK(t, call(t, n1, "POST", "/v1/accounts", wire.CreateAccount{Account: "K-1", Name: "Kept"}, nil), 201)
	d := c.converged()
	c.start(n3) // stalls: the entries after its applied index do not verify to it
	zktest.Eventually(t, 20*time.Second, "n3 stalled", func() bool { return n3.n.Stalled() != nil })
	c.stop(n2)
	c.start(n2) // now behind n3 in the election
	c.waitReady(n2)
	f := newForger(t, c)
	stalledAt := n3.n.Stalled().Index
	before, err := f.log.Read(stalledAt)
	if err != nil {
		t.Fatal(err)
	}
	c.stop(n1) // n3 leads next
	select {
	case <-n3.n.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("n3 did not halt")
	}
	if err := n3.n.Err(); !errors.Is(err, zkcoord.ErrUnverifiedApplied) {
		t.Fatalf("n3 stopped with %v, want ErrUnverifiedApplied", err)
	}
	n3.srv.Close()
	n3.n = nil
	after, err := f.log.Read(stalledAt)
	if err != nil || after.Hash() != before.Hash() {
		t.Fatalf("entry %d after n3 led: %v (hash %x, was %x)", stalledAt, err, after.Hash(), before.Hash())
	}
	zktest.Eventually(t, 30*time.Second, "n2 leads", func() bool { l, ok := c.leader(); return ok && l == n2 })
	r := call(t, n2, "GET", fmt.Sprintf("/v1/accounts/K-1?min_index=%d", d.Index), nil, nil)
	mustOK(t, r, 200)
	mustOK(t, call(t, n2, "POST", "/v1/accounts/K-1/deposit", wire.Amount{Amount: 7}, nil), 200)
}
