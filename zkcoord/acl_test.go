package zkcoord

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkbank/zkbank/certs"
	"github.com/zkbank/zkbank/zkcoord/zkserver"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// A client of the ensemble's own CA but without the bank's credentials can
// neither read nor change anything under the bank's root.
func TestAClientWithoutTheBanksCredentialsGetsNoAuth(t *testing.T) {
	ens := zktest.Shared(t, 1)
	s := connect(t, ens, nil)
	if _, err := s.Conn.Create(s.Path("members", "x"), []byte("mine"), 0, s.ACL()); err != nil {
		t.Fatal(err)
	}
	anon := ens.Dial(t)
	checks := map[string]func() error{
		"create": func() error {
			_, err := anon.Create(s.Path("operations", "forged"), []byte("x"), 0, zk.WorldACL(zk.PermAll))
			return err
		},
		"read":   func() error { _, _, err := anon.Get(s.Path("members", "x")); return err },
		"list":   func() error { _, _, err := anon.Children(s.Path("members")); return err },
		"set":    func() error { _, err := anon.Set(s.Path("members", "x"), []byte("theirs"), -1); return err },
		"delete": func() error { return anon.Delete(s.Path("members", "x"), -1) },
		"setacl": func() error { _, err := anon.SetACL(s.Path(), zk.WorldACL(zk.PermAll), -1); return err },
	}
	for what, try := range checks {
		if err := try(); !errors.Is(err, zk.ErrNoAuth) {
			t.Errorf("%s under the root without credentials: %v, want NoAuth", what, err)
		}
	}
	if b, _, err := s.Conn.Get(s.Path("members", "x")); err != nil || string(b) != "mine" {
		t.Fatalf("the bank's own znode after the attempts: %q, %v", b, err)
	}
}

// The servers take only TLS with a certificate of their CA: another CA's
// certificate, or plaintext, gets no session.
func TestOnlyTheEnsemblesCertificatesConnect(t *testing.T) {
	ens := zktest.Shared(t, 1)
	other := t.TempDir()
	ca, err := certs.NewCA(other, "someone else")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.IssueNode(other, "n1", []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certs.NodeFiles(other, "n1"))
	if err != nil {
		t.Fatal(err)
	}
	tc := ens.TLS()
	tc.Certificates = []tls.Certificate{pair}
	if err := speak(t, ens.Connect()[0], tc); err == nil {
		t.Fatal("ZooKeeper answered a client whose certificate another CA signed")
	}
	if err := speak(t, ens.Connect()[0], nil); err == nil {
		t.Fatal("ZooKeeper answered a plaintext client")
	}
	if err := speak(t, ens.Connect()[0], ens.TLS()); err != nil {
		t.Fatalf("ZooKeeper did not answer the ensemble's own client: %v", err)
	}
}

// speak sends ZooKeeper's four-letter `ruok` over TLS (tc) or plaintext,
// and is nil when the server answers imok.
func speak(t *testing.T, addr string, tc *tls.Config) error {
	t.Helper()
	ask := "ruok"
	if tc == nil {
		ask += "\n" // a TLS port reads a whole record header (5 bytes) before it refuses
	}
	b, err := zkserver.FourLetter(addr, ask, tc)
	if os.IsTimeout(err) {
		t.Fatalf("no answer and no refusal from %s", addr)
	}
	if string(b) != "imok" {
		return fmt.Errorf("no imok: %q, %v", b, err)
	}
	return nil
}

// A namespace anyone may change is refused, naming the znode, unless the
// session allows it.
func TestAnOpenNamespaceIsRefused(t *testing.T) {
	ens := zktest.Shared(t, 1)
	root := zktest.Root(t)
	super := ens.Super(t)
	if _, err := super.Create(root, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Servers: ens.Connect(), Root: root, TLS: ens.TLS(), Auth: ens.Auth(), SessionTimeout: testTimeout}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := Connect(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), root+" is open to world:anyone (cdrwa)") {
		t.Fatalf("connect to an open root: %v", err)
	}
	cfg.AllowOpen = true
	s, err := Connect(ctx, cfg)
	if err != nil {
		t.Fatalf("connect allowing an open root: %v", err)
	}
	s.Close()
}

// The credentials file must be the owner's alone and hold user:password.
func TestParseAuth(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if got, err := ParseAuth(write("ok", "zkbank:s3cret\n", 0o600)); err != nil || got != "zkbank:s3cret" {
		t.Fatalf("ParseAuth = %q, %v", got, err)
	}
	for name, c := range map[string]struct {
		text string
		mode os.FileMode
	}{"open": {"zkbank:s3cret", 0o644}, "nopass": {"zkbank:", 0o600}, "nouser": {":x", 0o600}, "lines": {"a:b\nc:d", 0o600}, "nocolon": {"zkbank", 0o600}} {
		_, err := ParseAuth(write(name, c.text, c.mode))
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
	}
}

// LockDown closes a namespace an older zkbank left open, every znode of
// it, after which a session that refuses open namespaces accepts it.
func TestLockDownClosesAnOpenNamespace(t *testing.T) {
	ens := zktest.Shared(t, 1)
	root := zktest.Root(t)
	super := ens.Super(t)
	for _, p := range []string{root, root + "/operations", root + "/operations/seg-0000000000", root + "/operations/seg-0000000000/op-00000000000000000001"} {
		if _, err := super.Create(p, []byte("x"), 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{Servers: ens.Connect(), Root: root, TLS: ens.TLS(), Auth: ens.Auth(), SessionTimeout: testTimeout, AllowOpen: true}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n, err := s.LockDown()
	if err != nil || n != 4 {
		t.Fatalf("LockDown changed %d znodes: %v; want the 4 open ones", n, err)
	}
	if _, _, err := ens.Dial(t).Get(root + "/operations/seg-0000000000/op-00000000000000000001"); !errors.Is(err, zk.ErrNoAuth) {
		t.Fatalf("an entry after LockDown, read without credentials: %v", err)
	}
	cfg.AllowOpen = false
	locked, err := Connect(ctx, cfg)
	if err != nil {
		t.Fatalf("connect to the locked namespace: %v", err)
	}
	locked.Close()
	if n, err := s.LockDown(); err != nil || n != 0 {
		t.Fatalf("LockDown again: %d, %v", n, err)
	}
}
