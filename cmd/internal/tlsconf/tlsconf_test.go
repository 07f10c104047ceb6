package tlsconf

import (
	"crypto/tls"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/zkbank/zkbank/certs"
)

// pki makes a CA with node n1 and client alice in a temp dir.
func pki(t *testing.T) (string, *certs.CA) {
	t.Helper()
	dir := t.TempDir()
	ca, err := certs.NewCA(dir, "test CA")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.IssueNode(dir, "n1", []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.IssueClient(dir, "alice", "admin"); err != nil {
		t.Fatal(err)
	}
	return dir, ca
}

func nodeFiles(dir, id string) Files {
	crt, key := certs.NodeFiles(dir, id)
	return Files{Cert: crt, Key: key, CA: filepath.Join(dir, certs.CAFile)}
}

// serve runs a TLS server on loopback that writes the serial of the
// client certificate it verified ("-" for none) and closes.
func serve(t *testing.T, m *Material) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", m.Server())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			if tc.Handshake() == nil {
				cs := tc.ConnectionState()
				who := "-"
				if leaf := Caller(&cs); leaf != nil {
					who = certs.Serial(leaf)
				}
				io.WriteString(tc, who)
			}
			tc.Close()
		}
	}()
	return ln.Addr().String()
}

func dial(addr string, cfg *tls.Config) (string, string, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	return string(b), certs.Serial(c.ConnectionState().PeerCertificates[0]), err
}

func TestMutualTLSNamesTheCaller(t *testing.T) {
	dir, _ := pki(t)
	server, err := Load(nodeFiles(dir, "n1"))
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, server)
	crt, key := certs.ClientFiles(dir, "alice")
	alice, err := Load(Files{Cert: crt, Key: key, CA: filepath.Join(dir, certs.CAFile)})
	if err != nil {
		t.Fatal(err)
	}
	who, _, err := dial(addr, alice.Client(NodeOnly))
	if err != nil || who != certs.Serial(alice.Leaf()) {
		t.Fatalf("alice's call: the server saw %q, err %v", who, err)
	}
	anon, err := Load(Files{CA: filepath.Join(dir, certs.CAFile)})
	if err != nil {
		t.Fatal(err)
	}
	if who, _, err := dial(addr, anon.Client(nil)); err != nil || who != "-" {
		t.Fatalf("a call without a certificate: the server saw %q, err %v", who, err)
	}
	// A client that wants a node refuses a server that is not one.
	aliceServer := serve(t, alice)
	if _, _, err := dial(aliceServer, anon.Client(NodeOnly)); err == nil {
		t.Fatal("NodeOnly accepted a client certificate as a server")
	}
}

func TestAnotherCAFailsTheHandshake(t *testing.T) {
	dir, _ := pki(t)
	other, _ := pki(t)
	server, err := Load(nodeFiles(dir, "n1"))
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, server)
	stranger, err := Load(nodeFiles(other, "n1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := dial(addr, stranger.Client(NodeOnly)); err == nil {
		t.Fatal("a client of another CA completed the handshake")
	}
}

func TestReloadServesTheNewCertificateAndKeepsTheOldOnError(t *testing.T) {
	dir, ca := pki(t)
	server, err := Load(nodeFiles(dir, "n1"))
	if err != nil {
		t.Fatal(err)
	}
	first := certs.Serial(server.Leaf())
	addr := serve(t, server)
	client, err := Load(Files{CA: filepath.Join(dir, certs.CAFile)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := client.Client(NodeOnly)
	if _, served, err := dial(addr, cfg); err != nil || served != first {
		t.Fatalf("served %s (err %v), want %s", served, err, first)
	}
	renewed, err := ca.IssueNode(dir, "n1", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, served, err := dial(addr, cfg); err != nil || served != certs.Serial(renewed) {
		t.Fatalf("after a reload: served %s (err %v), want %s", served, err, certs.Serial(renewed))
	}
	crt, _ := certs.NodeFiles(dir, "n1")
	if err := os.WriteFile(crt, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := server.Reload(); err == nil {
		t.Fatal("Reload accepted a broken certificate file")
	}
	if _, served, err := dial(addr, cfg); err != nil || served != certs.Serial(renewed) {
		t.Fatalf("after a failed reload: served %s (err %v), want %s", served, err, certs.Serial(renewed))
	}
}

func TestACertificateOfAnotherCADoesNotLoad(t *testing.T) {
	dir, _ := pki(t)
	other, _ := pki(t)
	crt, key := certs.NodeFiles(other, "n1")
	if _, err := Load(Files{Cert: crt, Key: key, CA: filepath.Join(dir, certs.CAFile)}); err == nil {
		t.Fatal("Load accepted a certificate its CA bundle did not sign")
	}
}

func TestReconnectsResumeUntilAReload(t *testing.T) {
	dir, _ := pki(t)
	server, err := Load(nodeFiles(dir, "n1"))
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, server)
	client, err := Load(nodeFiles(dir, "n1"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := client.Client(NodeOnly)
	resumed := func() bool {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.ReadAll(c); err != nil { // reads the session ticket too
			t.Fatal(err)
		}
		return c.ConnectionState().DidResume
	}
	if resumed() {
		t.Fatal("the first connection resumed")
	}
	if !resumed() {
		t.Fatal("the second connection did not resume")
	}
	if err := server.Reload(); err != nil {
		t.Fatal(err)
	}
	if resumed() {
		t.Fatal("a connection resumed a session of before the server's reload")
	}
	if full, res := server.Handshakes(); full != 2 || res != 1 {
		t.Fatalf("the server counted %d full and %d resumed handshakes, want 2 and 1", full, res)
	}
}
