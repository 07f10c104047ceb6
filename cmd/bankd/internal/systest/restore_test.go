package systest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/bankd/internal/peer"
	"github.com/zkbank/zkbank/cmd/internal/audit"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/zkcoord"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// TestDisasterRecovery: ZooKeeper loses the bank's log (a namespace of
// its own stands for an ensemble whose data dirs are gone). A node that
// applied entries refuses to start on it. Restores from the three
// journals, one of them behind, bring the bank back at the furthest one:
// the same state, every acknowledged write, an epoch above the old ones,
// writes going on and the whole journal verifying. Then every data dir
// is lost too, and a restore from a backup brings the bank back at the
// backup's index, its state exactly.
func TestDisasterRecovery(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 1), 3, func(cfg *node.Config) { cfg.SnapshotEveryEntries = 16 })
	leader, _ := c.leader()
	mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: "D-1", Name: "Dora"}, nil), 201)
	deposit := func(tn *testNode, from, to int) {
		for i := from; i < to; i++ {
			mustOK(t, call(t, tn, "POST", "/v1/accounts/D-1/deposit", wire.Amount{Amount: 3}, map[string]string{wire.HeaderIdempotencyKey: fmt.Sprint("d", i)}), 200)
		}
	}
	deposit(leader, 0, 30)
	backup, backupAt := takeBackup(t, c, c.followers()[0])
	deposit(leader, 30, 40) // acknowledged after the backup
	behind := c.followers()[0]
	c.converged()
	c.stop(behind)
	deposit(leader, 40, 50) // the stopped node's journal lacks these
	before := c.converged()
	for _, tn := range c.nodes {
		c.stop(tn)
	}

	c.root += "-lost"
	if _, err := node.Start(context.Background(), c.withTransport(behind)); !errors.Is(err, zkcoord.ErrLogLost) {
		t.Fatalf("a node started on the empty namespace: %v, want ErrLogLost", err)
	}
	order := append([]*testNode{behind}, c.others(behind)...)
	want := []zkcoord.RestoreResult{zkcoord.Seeded, zkcoord.MovedOn, zkcoord.Kept}
	var oldEpoch uint64 // of the last entry before the disaster
	for i, tn := range order {
		got := restore(t, c, tn, nil)
		if got.Result != want[i] || got.FromBackup {
			t.Fatalf("restore %d, from %s: %+v, want result %v", i, tn.id, got, want[i])
		}
		oldEpoch = max(oldEpoch, got.Epoch)
	}
	after := c.restart()
	if after != before {
		t.Fatalf("after the restore from the journals: %+v, before the disaster %+v", after, before)
	}
	checkBalance(t, c, 150)
	c.checkGoesOn(oldEpoch, after.Index, 150)

	// Everything lost: ZooKeeper and every data dir. The backup brings the
	// bank back at its index, without the writes acknowledged after it.
	for _, tn := range c.nodes {
		c.stop(tn)
		tn.dir = filepath.Join(t.TempDir(), "data")
	}
	c.root += "-again"
	got := restore(t, c, c.nodes[0], bytes.NewReader(backup))
	if got.Index != backupAt.Index || !got.FromBackup || got.Result != zkcoord.Seeded {
		t.Fatalf("restore from the backup: %+v, the backup is of %+v", got, backupAt)
	}
	if again := restore(t, c, c.nodes[1], bytes.NewReader(backup)); again.Result != zkcoord.Kept {
		t.Fatalf("the same backup restored twice: %+v, want it kept", again)
	}
	if _, err := node.Restore(context.Background(), c.config(c.nodes[1], nil), bytes.NewReader(backup)); !errors.Is(err, node.ErrNotEmptyDataDir) {
		t.Fatalf("a backup restored into a data dir that holds state: %v, want ErrNotEmptyDataDir", err)
	}
	if after := c.restart(); after != backupAt {
		t.Fatalf("after the restore from the backup: %+v, the backup is of %+v", after, backupAt)
	}
	checkBalance(t, c, 90)
	c.checkGoesOn(got.Epoch, backupAt.Index, 90)
}

// takeBackup asks tn for a backup, checks it opens and verifies, and
// returns it with the digest of the state it holds.
func takeBackup(t *testing.T, c *cluster, tn *testNode) ([]byte, wire.Digest) {
	t.Helper()
	r := call(t, tn, "POST", "/v1/admin/backup", nil, nil)
	if r.status != 200 || r.header.Get("Content-Type") != wire.ContentBackup {
		t.Fatalf("backup: %v", r)
	}
	e, meta, _, err := c.trust.ReadBackup(bytes.NewReader(r.body), engine.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if r.header.Get(wire.HeaderIndex) != fmt.Sprint(meta.Index) || bytes.Contains(r.body, []byte("Dora")) {
		t.Fatalf("backup answered index %s for a snapshot at %d, or holds a name in the clear", r.header.Get(wire.HeaderIndex), meta.Index)
	}
	return r.body, wire.Digest{Index: e.Index(), StateHash: e.StateHash().String(), Accounts: e.Totals().Accounts, TotalBalance: e.Totals().Balance}
}

func restore(t *testing.T, c *cluster, tn *testNode, backup *bytes.Reader) node.Restored {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var from io.Reader
	if backup != nil {
		from = backup
	}
	got, err := node.Restore(ctx, c.config(tn, nil), from)
	if err != nil {
		t.Fatalf("restore from %s: %v", tn.id, err)
	}
	return got
}

// withTransport is tn's configuration, enough for node.Start.
func (c *cluster) withTransport(tn *testNode) node.Config {
	return c.config(tn, peer.NewTransport(peer.Config{Client: peer.Client(tn.tls, func(string) bool { return false }), CallTimeout: time.Second}))
}

// restart starts every node and returns the digest they agree on.
func (c *cluster) restart() wire.Digest {
	for _, tn := range c.nodes {
		c.start(tn)
	}
	c.waitReady(c.nodes...)
	return c.converged()
}

func (c *cluster) others(tn *testNode) []*testNode {
	var out []*testNode
	for _, o := range c.nodes {
		if o != tn {
			out = append(out, o)
		}
	}
	return out
}

func checkBalance(t *testing.T, c *cluster, want uint64) {
	t.Helper()
	for _, tn := range c.nodes {
		if a := decode[wire.Account](t, call(t, tn, "GET", "/v1/accounts/D-1", nil, nil)); a.Balance != want {
			t.Fatalf("D-1 on %s: %+v, want balance %d", tn.id, a, want)
		}
	}
}

// checkGoesOn: a write lands after the restored index, under an epoch
// above the restored entry's, and a node's whole journal verifies across
// the restore.
func (c *cluster) checkGoesOn(oldEpoch, restoredAt, balance uint64) {
	c.t.Helper()
	leader, _ := c.leader()
	r := call(c.t, leader, "POST", "/v1/accounts/D-1/deposit", wire.Amount{Amount: 1}, map[string]string{wire.HeaderIdempotencyKey: fmt.Sprint("after-", restoredAt)})
	mustOK(c.t, r, 200)
	d := c.converged()
	if d.Index <= restoredAt || d.TotalBalance != balance+1 {
		c.t.Fatalf("after the restore at %d: %+v", restoredAt, d)
	}
	tn := c.followers()[0]
	c.stop(tn)
	var lastEpoch uint64
	rep, err := audit.Replay(tn.dir, audit.Options{Trust: c.trust, OnApply: func(ent *engine.Entry, _ []engine.Result, _ *engine.Engine) { lastEpoch = ent.Epoch }})
	if err != nil || rep.Index != d.Index || rep.StateHash.String() != d.StateHash || rep.Verified != rep.Entries {
		c.t.Fatalf("audit of %s after the restore: %+v, %v; cluster digest %+v", tn.id, rep, err, d)
	}
	if lastEpoch <= oldEpoch {
		c.t.Fatalf("the entry after the restore is of epoch %d, the restored one of %d", lastEpoch, oldEpoch)
	}
	c.start(tn)
	c.waitReady(tn)
}

// TestARunningBankWritesNothingWhenZooKeeperLosesItsData: the
// ensemble's data goes while the bank runs. The running nodes cannot
// even reconnect (ZooKeeper turns away a client that saw a newer zxid
// than it has) and write nothing; each one restarted refuses the empty
// ensemble (ErrLogLost). Their journals keep every acknowledged write.
func TestARunningBankWritesNothingWhenZooKeeperLosesItsData(t *testing.T) {
	ens := zktest.Start(t, 1)
	c := newCluster(t, ens, 3, nil)
	leader, _ := c.leader()
	mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: "H-1", Name: "Hal", Balance: 7}, nil), 201)
	before := c.converged()

	ens.Servers[0].LoseData(t)
	time.Sleep(sessionTimeout) // the nodes run on meanwhile: they must write nothing
	for _, tn := range c.nodes {
		c.stop(tn)
		if _, err := node.Start(context.Background(), c.withTransport(tn)); !errors.Is(err, zkcoord.ErrLogLost) {
			t.Fatalf("%s restarted on the emptied ensemble: %v, want ErrLogLost", tn.id, err)
		}
	}
	s := c.superSession()
	if last, err := s.Log(0).LastIndex(); err != nil || last != 0 {
		t.Fatalf("the emptied namespace holds entries up to %d (%v)", last, err)
	}
	for _, tn := range c.nodes {
		rep, err := audit.Replay(tn.dir, audit.Options{Trust: c.trust})
		if err != nil || rep.Index != before.Index || rep.StateHash.String() != before.StateHash {
			t.Fatalf("%s's journal after the loss: %+v, %v; before it %+v", tn.id, rep, err, before)
		}
	}
}
