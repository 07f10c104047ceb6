package certs

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

func TestOnlyANodeCertificateIsANode(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA(dir, "test CA")
	if err != nil {
		t.Fatal(err)
	}
	node, err := ca.IssueNode(dir, "n1", []string{"127.0.0.1", "bank-1.example"})
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := NodeID(node); !ok || id != "n1" {
		t.Fatalf("NodeID(node cert) = %q, %v", id, ok)
	}
	if _, _, ok := Client(node); ok {
		t.Fatal("a node certificate passed as a client's")
	}
	if len(node.IPAddresses) != 1 || len(node.DNSNames) != 1 || node.DNSNames[0] != "bank-1.example" {
		t.Fatalf("node SANs: %v %v", node.IPAddresses, node.DNSNames)
	}

	admin, err := ca.IssueClient(dir, "alice", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if name, role, ok := Client(admin); !ok || name != "alice" || role != "admin" {
		t.Fatalf("Client(admin) = %q %q %v", name, role, ok)
	}
	if _, ok := NodeID(admin); ok {
		t.Fatal("a client certificate passed as a node's")
	}

	// A client certificate that also names a node (the URI SAN a node's
	// carries) is still not a node: it lacks the server usage.
	forged := *admin
	forged.URIs = append(forged.URIs, NodeURI("n1"))
	if _, ok := NodeID(&forged); ok {
		t.Fatal("a client certificate with a node's URI passed as a node")
	}
}

func TestIssueRefusesBadNamesAndRoles(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA(dir, "test CA")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewCA(dir, "again"); err == nil {
		t.Fatal("NewCA overwrote an existing CA")
	}
	for _, id := range []string{"", "../n1", "n 1", "-n"} {
		if _, err := ca.IssueNode(dir, id, nil); err == nil {
			t.Errorf("IssueNode(%q) succeeded", id)
		}
	}
	if _, err := ca.IssueClient(dir, "bob", "root"); err == nil {
		t.Error("IssueClient with an unknown role succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "client-bob.crt")); err == nil {
		t.Error("a refused client left a file")
	}
}

func TestRolloverTrustsBothCAsUntilDropOld(t *testing.T) {
	dir := t.TempDir()
	old, err := NewCA(dir, "CA 1")
	if err != nil {
		t.Fatal(err)
	}
	oldNode, err := old.IssueNode(dir, "n1", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Rollover(dir, "CA 2"); err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ca.Cert.Subject.CommonName != "CA 2" {
		t.Fatalf("after a rollover the signing CA is %q", ca.Cert.Subject.CommonName)
	}
	newNode, err := ca.IssueNode(dir, "n2", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	verify := func(c *x509.Certificate) error {
		pool, err := ReadPool(filepath.Join(dir, CAFile))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		return err
	}
	if err := verify(oldNode); err != nil {
		t.Fatalf("during a rollover the old CA's certificate fails: %v", err)
	}
	if err := verify(newNode); err != nil {
		t.Fatalf("during a rollover the new CA's certificate fails: %v", err)
	}
	if err := DropOld(dir); err != nil {
		t.Fatal(err)
	}
	if err := verify(oldNode); err == nil {
		t.Fatal("after DropOld the old CA's certificate still verifies")
	}
	if err := verify(newNode); err != nil {
		t.Fatalf("after DropOld the new CA's certificate fails: %v", err)
	}
}

func TestKeysAreNotWorldReadable(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA(dir, "test CA")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.IssueClient(dir, "alice", "teller"); err != nil {
		t.Fatal(err)
	}
	_, key := ClientFiles(dir, "alice")
	for _, f := range []string{filepath.Join(dir, CAKeyFile), key} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v", f, st.Mode().Perm())
		}
	}
}
