package seal

import (
	"crypto"
	"crypto/tls"
	"errors"
	"path/filepath"
	"testing"

	"github.com/zkbank/zkbank/certs"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
)

// fixture is a cluster's trust and the identities tests sign with.
type fixture struct {
	t     testing.TB
	trust *Trust
	dir   string
	ca    *certs.CA
}

func newFixture(t testing.TB) *fixture {
	dir := t.TempDir()
	ca, err := certs.NewCA(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := certs.ReadPool(filepath.Join(dir, certs.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := NewKeyring(map[uint32][KeyBytes]byte{1: {1}, 2: {2}})
	return &fixture{t: t, dir: dir, ca: ca, trust: &Trust{Roots: pool, Cluster: []byte("cluster-0123456789"), Keys: keys}}
}

// identity loads a certificate and key made by issue into dir.
func (f *fixture) identity(crt, key string) (crypto.Signer, []byte, string) {
	pair, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		f.t.Fatal(err)
	}
	return pair.PrivateKey.(crypto.Signer), pair.Leaf.Raw, certs.Serial(pair.Leaf)
}

func (f *fixture) node(id string) (crypto.Signer, []byte, string) {
	if _, err := f.ca.IssueNode(f.dir, id, []string{"127.0.0.1"}); err != nil {
		f.t.Fatal(err)
	}
	return f.identity(certs.NodeFiles(f.dir, id))
}

// entryAt is a sealed entry of one deposit at index after prev.
func (f *fixture) entryAt(term *Term, index, epoch uint64, prev entry.Hash) *entry.Envelope {
	body, err := engine.EncodeCommands([]engine.Command{{Op: engine.OpDeposit, Key: "k", Account: "A-1", Amount: 5}})
	if err != nil {
		f.t.Fatal(err)
	}
	e := &entry.Envelope{Index: index, Epoch: epoch, PrevHash: prev, TimeMs: 1_800_000_000_000, BodyVersion: entry.BodySealed, Body: body}
	if err := term.Seal(e); err != nil {
		f.t.Fatal(err)
	}
	if _, err := entry.Encode(e); err != nil {
		f.t.Fatal(err)
	}
	return e
}

func (f *fixture) cursor(revoked ...string) *Cursor {
	c, err := f.trust.NewCursor(engine.Signer{}, func(s string) bool {
		for _, r := range revoked {
			if r == s {
				return true
			}
		}
		return false
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func TestALeadersEntriesVerifyAndOpen(t *testing.T) {
	f := newFixture(t)
	key, cert, _ := f.node("n1")
	term := f.trust.NewTerm(key, cert, nil)
	first := f.entryAt(term, 1, 1, entry.Hash{})
	second := f.entryAt(term, 2, 1, first.Hash())
	if len(first.Cert) == 0 || len(second.Cert) != 0 || len(second.Sig) == 0 || second.KeyID != 2 {
		t.Fatalf("term entry cert %d bytes, next cert %d bytes, sig %d bytes, key %d", len(first.Cert), len(second.Cert), len(second.Sig), second.KeyID)
	}
	c := f.cursor()
	for _, env := range []*entry.Envelope{first, second} {
		decoded, err := entry.Decode(env.Raw())
		if err != nil {
			t.Fatal(err)
		}
		e, err := c.Open(decoded)
		if err != nil {
			t.Fatalf("entry %d: %v", env.Index, err)
		}
		if len(e.Commands) != 1 || e.Commands[0].Amount != 5 || e.Hash() != env.Hash() {
			t.Fatalf("entry %d opened as %+v", env.Index, e.Commands)
		}
	}
}

// Every way an entry can be forged or misplaced is refused.
func TestForgedEntriesDoNotVerify(t *testing.T) {
	f := newFixture(t)
	key, cert, serial := f.node("n1")
	other := newFixture(t)
	outKey, outCert, _ := other.node("n1")
	if _, err := f.ca.IssueClient(f.dir, "alice", "admin"); err != nil {
		t.Fatal(err)
	}
	clientKey, clientCert, _ := f.identity(certs.ClientFiles(f.dir, "alice"))
	foreign := *f.trust
	foreign.Cluster = []byte("another-cluster-id")

	for name, tc := range map[string]struct {
		entries func() []*entry.Envelope
		revoked []string
	}{
		"outsider's key": {entries: func() []*entry.Envelope {
			return []*entry.Envelope{f.entryAt(f.trust.NewTerm(outKey, outCert, nil), 1, 1, entry.Hash{})}
		}},
		"client certificate of the CA": {entries: func() []*entry.Envelope {
			return []*entry.Envelope{f.entryAt(f.trust.NewTerm(clientKey, clientCert, nil), 1, 1, entry.Hash{})}
		}},
		"revoked node certificate": {revoked: []string{serial}, entries: func() []*entry.Envelope {
			return []*entry.Envelope{f.entryAt(f.trust.NewTerm(key, cert, nil), 1, 1, entry.Hash{})}
		}},
		"another cluster": {entries: func() []*entry.Envelope {
			return []*entry.Envelope{f.entryAt(foreign.NewTerm(key, cert, nil), 1, 1, entry.Hash{})}
		}},
		"no term entry": {entries: func() []*entry.Envelope {
			term := f.trust.NewTerm(key, cert, nil)
			f.entryAt(term, 1, 1, entry.Hash{}) // sealed, never shown
			return []*entry.Envelope{f.entryAt(term, 2, 1, entry.Hash{})}
		}},
		"second signer in one epoch": {entries: func() []*entry.Envelope {
			first := f.entryAt(f.trust.NewTerm(key, cert, nil), 1, 1, entry.Hash{})
			k2, c2, _ := f.node("n2")
			return []*entry.Envelope{first, f.entryAt(f.trust.NewTerm(k2, c2, nil), 2, 1, first.Hash())}
		}},
		"signed by the last epoch's key": {entries: func() []*entry.Envelope {
			term := f.trust.NewTerm(key, cert, nil)
			first := f.entryAt(term, 1, 1, entry.Hash{})
			return []*entry.Envelope{first, f.entryAt(term, 2, 2, first.Hash())}
		}},
		"body changed": {entries: func() []*entry.Envelope {
			e := f.entryAt(f.trust.NewTerm(key, cert, nil), 1, 1, entry.Hash{})
			e.Body[len(e.Body)-1] ^= 1
			return []*entry.Envelope{reencode(t, e)}
		}},
		"amount changed and re-signed by nobody": {entries: func() []*entry.Envelope {
			e := f.entryAt(f.trust.NewTerm(key, cert, nil), 1, 1, entry.Hash{})
			e.TimeMs++
			return []*entry.Envelope{reencode(t, e)}
		}},
	} {
		t.Run(name, func(t *testing.T) {
			c := f.cursor(tc.revoked...)
			entries := tc.entries()
			for i, env := range entries {
				_, err := c.Open(env)
				last := i == len(entries)-1
				if !last && err != nil {
					t.Fatalf("entry %d before the forged one: %v", env.Index, err)
				}
				if last && !errors.Is(err, ErrUnverified) {
					t.Fatalf("the forged entry: %v, want ErrUnverified", err)
				}
			}
		})
	}
}

func reencode(t *testing.T, e *entry.Envelope) *entry.Envelope {
	if _, err := entry.Encode(e); err != nil {
		t.Fatal(err)
	}
	return e
}

// A revocation in an entry counts from the next entry on.
func TestARevocationStopsItsSignerAtTheNextEntry(t *testing.T) {
	f := newFixture(t)
	key, cert, serial := f.node("n1")
	term := f.trust.NewTerm(key, cert, nil)
	body, _ := engine.EncodeCommands([]engine.Command{{Op: engine.OpRevokeCertificate, Key: "r", Serial: serial}})
	first := &entry.Envelope{Index: 1, Epoch: 1, TimeMs: 1_800_000_000_000, BodyVersion: entry.BodySealed, Body: body}
	if err := term.Seal(first); err != nil {
		t.Fatal(err)
	}
	reencode(t, first)
	c := f.cursor()
	e, err := c.Open(first)
	if err != nil || !Revokes(e) {
		t.Fatalf("the revoking entry: %v, revokes %v", err, Revokes(e))
	}
	if _, err := c.Open(f.entryAt(term, 2, 1, first.Hash())); !errors.Is(err, ErrUnverified) {
		t.Fatalf("an entry signed after the signer's revocation: %v", err)
	}
}

// A trust without a CA bundle verifies no term entry (x509 would take
// the system's roots).
func TestNoCABundleVerifiesNothing(t *testing.T) {
	f := newFixture(t)
	key, cert, _ := f.node("n1")
	e := f.entryAt(f.trust.NewTerm(key, cert, nil), 1, 1, entry.Hash{})
	noRoots := &Trust{Cluster: f.trust.Cluster, Keys: f.trust.Keys}
	c, err := noRoots.NewCursor(engine.Signer{}, func(string) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Open(e); !errors.Is(err, ErrUnverified) {
		t.Fatalf("without a CA bundle: %v, want ErrUnverified", err)
	}
}
