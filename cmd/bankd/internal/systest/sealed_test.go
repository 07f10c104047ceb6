package systest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkbank/zkbank/certs"
	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/internal/audit"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
	"github.com/zkbank/zkbank/journal"
	"github.com/zkbank/zkbank/keystore"
	"github.com/zkbank/zkbank/seal"
	"github.com/zkbank/zkbank/snapshot"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// TestZooKeeperHoldsNoPlaintext: ZooKeeper's super user, reading every
// znode under the bank's root, finds no name, account number or balance.
func TestZooKeeperHoldsNoPlaintext(t *testing.T) {
	ens := zktest.Shared(t, 1)
	c := newCluster(t, ens, 3, nil)
	leader, _ := c.leader()
	const name, account, amount = "Zelda Quuxworth", "PLAINTEXT-7", 987654321
	mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: account, Name: name}, nil), 201)
	mustOK(t, call(t, c.nodes[1], "POST", "/v1/accounts/"+account+"/deposit", wire.Amount{Amount: amount}, nil), 200)
	c.converged()
	secrets := map[string][]byte{"name": []byte(name), "account": []byte(account),
		"amount (msgpack)": binary.BigEndian.AppendUint32([]byte{0xce}, amount), "amount (text)": []byte(fmt.Sprint(amount))}
	super := ens.Super(t)
	read := 0
	var walk func(p string)
	walk = func(p string) {
		data, _, err := super.Get(p)
		if err != nil && !errors.Is(err, zk.ErrNoNode) {
			t.Fatalf("get %s: %v", p, err)
		}
		read++
		for what, s := range secrets {
			if bytes.Contains(data, s) {
				t.Errorf("%s holds the %s in the clear", p, what)
			}
		}
		kids, _, err := super.Children(p)
		if err != nil && !errors.Is(err, zk.ErrNoNode) {
			t.Fatalf("children of %s: %v", p, err)
		}
		for _, k := range kids {
			walk(path.Join(p, k))
		}
	}
	walk(c.root)
	if read < 10 {
		t.Fatalf("read only %d znodes under %s", read, c.root)
	}
}

// TestATamperedJournalOrSnapshotFailsTheAudit: an entry whose amount was
// changed (with the real data key) and the chain redone after it replays
// without --cacert, and fails with it at that entry's index; a snapshot
// with a changed balance, its checksum redone, fails too, where the node's
// own verifies.
func TestATamperedJournalOrSnapshotFailsTheAudit(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 1), 1, func(cfg *node.Config) { cfg.SnapshotEveryEntries = 4 })
	n1 := c.nodes[0]
	mustOK(t, call(t, n1, "POST", "/v1/accounts", wire.CreateAccount{Account: "T-1", Name: "Tam"}, nil), 201)
	mustOK(t, call(t, n1, "POST", "/v1/accounts/T-1/deposit", wire.Amount{Amount: 777777}, nil), 200)
	mustOK(t, call(t, n1, "POST", "/v1/accounts", wire.CreateAccount{Account: "U-1", Name: "Una"}, nil), 201)
	for range 5 {
		mustOK(t, call(t, n1, "POST", "/v1/accounts/U-1/deposit", wire.Amount{Amount: 1}, nil), 200)
	}
	c.stop(n1)
	raws := journalRaws(t, n1.dir)
	noSig := &seal.Trust{Keys: c.trust.Keys} // reads sealed entries, verifies nothing

	// The entry that deposits, with 1 more, and the chain redone after it.
	k := uint64(len(raws)) // the last deposit
	forged := c.tamper(raws, k)
	dir := filepath.Join(t.TempDir(), "forged")
	writeJournal(t, dir, c.trust, 0, engine.Hash{}, forged)
	if _, err := audit.Replay(dir, audit.Options{Trust: noSig}); err != nil {
		t.Fatalf("without signatures the re-chained journal replays: %v", err)
	}
	_, err := audit.Replay(dir, audit.Options{Trust: c.trust})
	if !errors.Is(err, audit.ErrMismatch) || !errors.Is(err, seal.ErrUnverified) || !strings.Contains(err.Error(), fmt.Sprintf("entry %d:", k)) {
		t.Fatalf("replay with signatures: %v, want a mismatch at entry %d", err, k)
	}

	// A journal that starts at a snapshot: the node's verifies, a forged
	// one (a balance changed, the checksum redone, signed by nobody) does
	// not.
	snaps, err := snapshot.NewStore(filepath.Join(n1.dir, "snapshots"), 3)
	if err != nil {
		t.Fatal(err)
	}
	list, err := snaps.List()
	if err != nil || len(list) == 0 {
		t.Fatalf("snapshots of n1: %v %v", list, err)
	}
	oldest := list[len(list)-1]
	real, meta, err := snapshot.Load(oldest.Path, engine.DefaultConfig())
	if err != nil || !meta.Signed || meta.Index >= uint64(len(raws)) {
		t.Fatalf("n1's snapshot at %d (of %d entries): signed %v, %v", oldest.Index, len(raws), meta.Signed, err)
	}
	at := meta.Index
	good := filepath.Join(t.TempDir(), "good")
	writeJournal(t, good, c.trust, at, meta.EntryHash, raws[at:])
	if _, err := snapshot.NewStore(filepath.Join(good, "snapshots"), 3); err != nil {
		t.Fatal(err)
	}
	copyFile(t, oldest.Path, filepath.Join(good, "snapshots", filepath.Base(oldest.Path)))
	rep, err := audit.Replay(good, audit.Options{Trust: c.trust})
	if err != nil || rep.From != at || rep.Verified != rep.Entries {
		t.Fatalf("replay from n1's own snapshot at %d: %+v %v", at, rep, err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	writeJournal(t, bad, c.trust, at, meta.EntryHash, raws[at:])
	richer := changeBalance(t, real, 777777, 777778)
	if richer.Totals().Balance != real.Totals().Balance+1 || richer.Index() != at {
		t.Fatalf("the forged state: %+v at %d", richer.Totals(), richer.Index())
	}
	badStore, err := snapshot.NewStore(filepath.Join(bad, "snapshots"), 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := badStore.Save(richer, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Replay(bad, audit.Options{Trust: noSig}); err != nil {
		t.Fatalf("without signatures the forged snapshot is a fine start: %v", err)
	}
	if _, err := audit.Replay(bad, audit.Options{Trust: c.trust}); !errors.Is(err, audit.ErrMismatch) || !strings.Contains(err.Error(), fmt.Sprintf("snapshot at %d of a sealed log is not signed", at)) {
		t.Fatalf("replay from the forged snapshot: %v", err)
	}
}

// journalRaws is every entry of a stopped node's journal, as stored.
func journalRaws(t *testing.T, dir string) [][]byte {
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var out [][]byte
	for i := j.First(); i <= j.Last(); i++ {
		raw, err := j.GetRaw(i)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

// tamper changes the deposit in entry k (1-based) to one more, sealed with
// the real data key but keeping the old signature (nobody else can sign),
// and chains the entries after it to it.
func (c *cluster) tamper(raws [][]byte, k uint64) [][]byte {
	t := c.t
	out := append([][]byte(nil), raws[:k-1]...)
	env, err := entry.Decode(raws[k-1])
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.trust.Decrypt(env)
	if err != nil || len(e.Commands) != 1 || e.Commands[0].Op != engine.OpDeposit {
		t.Fatalf("entry %d: %+v %v", k, e, err)
	}
	e.Commands[0].Amount++
	body, err := engine.EncodeCommands(e.Commands)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ca.IssueNode(c.certs, "mallory", []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	key, cert := identity(t, first(certs.NodeFiles(c.certs, "mallory")), second(certs.NodeFiles(c.certs, "mallory")))
	forged := &entry.Envelope{Index: env.Index, Epoch: env.Epoch, PrevHash: env.PrevHash, TimeMs: env.TimeMs, BodyVersion: env.BodyVersion, Body: body}
	if err := c.trust.NewTerm(key, cert, nil).Seal(forged); err != nil {
		t.Fatal(err)
	}
	forged.Cert, forged.Cluster, forged.Sig = env.Cert, env.Cluster, env.Sig
	prev := reencode(t, forged)
	out = append(out, prev.Raw())
	for _, raw := range raws[k:] {
		next, err := entry.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		next.PrevHash = prev.Hash()
		prev = reencode(t, next)
		out = append(out, prev.Raw())
	}
	return out
}

func reencode(t *testing.T, e *entry.Envelope) *entry.Envelope {
	if _, err := entry.Encode(e); err != nil {
		t.Fatal(err)
	}
	return e
}

// writeJournal makes a data dir whose journal continues from (base, hash)
// with raws.
// A journal that starts at base gets a key store that vouches for the
// snapshot at base: these tests' few keys never leave the window, so it
// needs no record.
func writeJournal(t *testing.T, dir string, trust *seal.Trust, base uint64, hash engine.Hash, raws [][]byte) {
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{Decode: trust.DecodeRaw})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	keys, err := keystore.Open(filepath.Join(dir, "keys"), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	if err := keys.Sync(base); err != nil {
		t.Fatal(err)
	}
	if base > 0 {
		if err := j.Reset(base, hash); err != nil {
			t.Fatal(err)
		}
	}
	for _, raw := range raws {
		e, err := trust.DecodeRaw(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Append(e); err != nil {
			t.Fatal(err)
		}
	}
}

// changeBalance is e with the balance from made to, and the total with
// it (the state's bytes edited wherever they hold them, the outcomes the
// idempotency window keeps too; the engine restored from them).
func changeBalance(t *testing.T, e *engine.Engine, from, to uint64) *engine.Engine {
	var buf bytes.Buffer
	if err := e.WriteState(&buf); err != nil {
		t.Fatal(err)
	}
	state := buf.Bytes()
	total := e.Totals().Balance
	for _, r := range [][2]uint64{{total, total + to - from}, {from, to}} { // the total first: the new balance may be the old total
		old, repl := binary.AppendUvarint(nil, r[0]), binary.AppendUvarint(nil, r[1])
		if len(old) != len(repl) || !bytes.Contains(state, old) {
			t.Fatalf("%d is not in the state as %d bytes", r[0], len(old))
		}
		state = bytes.ReplaceAll(state, old, repl)
	}
	changed, err := engine.Restore(engine.DefaultConfig(), bytes.NewReader(state))
	if err != nil {
		t.Fatal(err)
	}
	return changed
}

// versionCheck is how often a leader reads the registry (node's
// versionCheckInterval).
const versionCheck = time.Second

// TestDataKeyRotation: a second data key reaches the nodes one restart at
// a time; a leader that holds it seals with it only once every expected
// member does, and the entries of the first key stay readable.
func TestDataKeyRotation(t *testing.T) {
	var rotated sync.Map // node id -> *seal.Trust holding both keys
	c := newCluster(t, zktest.Shared(t, 1), 3, func(cfg *node.Config) {
		if tr, ok := rotated.Load(cfg.ID); ok {
			cfg.Seal = &node.SealConfig{Trust: tr.(*seal.Trust), Identity: cfg.Seal.Identity}
		}
	})
	leader, _ := c.leader()
	mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: "R-1", Name: "Rot"}, nil), 201)
	if _, err := seal.AddKey(c.certs); err != nil {
		t.Fatal(err)
	}
	both, err := seal.LoadDir(c.certs)
	if err != nil || len(both.Keys.IDs()) != 2 {
		t.Fatalf("keys after the rotation: %v %v", both, err)
	}
	f := newForger(t, c)
	lastKey := func() uint32 {
		last, err := f.log.LastIndex()
		if err != nil {
			t.Fatal(err)
		}
		e, err := f.log.Read(last)
		if err != nil {
			t.Fatal(err)
		}
		return e.KeyID
	}
	deposit := func(amount uint64) {
		t.Helper()
		l, ok := c.leader()
		if !ok {
			t.Fatal("no leader")
		}
		mustOK(t, call(t, l, "POST", "/v1/accounts/R-1/deposit", wire.Amount{Amount: amount}, nil), 200)
	}
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	for _, tn := range []*testNode{n1, n3} { // n2 leads meanwhile
		rotated.Store(tn.id, both)
		c.stop(tn)
		c.start(tn)
		c.waitReady(tn)
	}
	c.stop(n2) // n1 leads, holding key 2; n2, expected, does not
	zktest.Eventually(t, 30*time.Second, "n1 leads", func() bool { l, ok := c.leader(); return ok && l == n1 })
	deposit(1)
	time.Sleep(2 * versionCheck) // the leader has looked at the registry again
	deposit(2)
	if got := lastKey(); got != 1 {
		t.Fatalf("n2 lacks key 2, yet the leader sealed with key %d", got)
	}
	rotated.Store(n2.id, both)
	c.start(n2)
	c.waitReady(n2)
	zktest.Eventually(t, 30*time.Second, "entries sealed with key 2", func() bool {
		deposit(10)
		return lastKey() == 2
	})
	d := c.converged()
	for _, tn := range c.nodes {
		a := decode[wire.Account](t, call(t, tn, "GET", fmt.Sprintf("/v1/accounts/R-1?min_index=%d", d.Index), nil, nil))
		if a.Balance < 13 {
			t.Fatalf("R-1 on %s: %+v", tn.id, a)
		}
	}
	c.stop(n1)
	rep, err := audit.Replay(n1.dir, audit.Options{Trust: both})
	if err != nil || rep.Verified != rep.Entries {
		t.Fatalf("audit across the rotation: %+v %v", rep, err)
	}
}
