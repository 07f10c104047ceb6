package zktest

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/zkbank/zkbank/certs"
	"github.com/zkbank/zkbank/zkcoord/zkdial"
	"github.com/zkbank/zkbank/zkcoord/zkserver"
)

// security is an ensemble's TLS material and credentials: a CA of its
// own, one server certificate for every server (IP SAN 127.0.0.1), a
// client certificate tests connect with, ZooKeeper's super password, and
// digest credentials for the bank.
type security struct {
	dir    string
	client *tls.Config
	super  string
	auth   string
}

// ClientName is the node id in the client certificate of an ensemble.
const ClientName = "zktest-client"

func newSecurity(dir string) (*security, error) {
	ca, err := certs.NewCA(dir, "zktest CA")
	if err != nil {
		return nil, err
	}
	if _, err := ca.IssueZooKeeper(dir, "zk", []string{"127.0.0.1"}); err != nil {
		return nil, err
	}
	if _, err := ca.IssueNode(dir, ClientName, []string{"127.0.0.1"}); err != nil {
		return nil, err
	}
	crt, key := certs.NodeFiles(dir, ClientName)
	pair, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		return nil, fmt.Errorf("zktest: %w", err)
	}
	pool, err := certs.ReadPool(filepath.Join(dir, certs.CAFile))
	if err != nil {
		return nil, err
	}
	return &security{dir: dir, super: zkserver.NewSecret(), auth: "zkbank:" + zkserver.NewSecret(),
		client: &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS13}}, nil
}

// serverTLS is what each server of the ensemble is given.
func (s *security) serverTLS() *zkserver.TLS {
	_, _, keystore := certs.ZooKeeperFiles(s.dir, "zk")
	return &zkserver.TLS{KeyStore: keystore, TrustStore: filepath.Join(s.dir, certs.CAFile), SuperDigest: zkserver.SuperDigest(s.super)}
}

// TLS is a client configuration the ensemble accepts: a certificate of
// its CA, and the CA as the roots.
func (e *Ensemble) TLS() *tls.Config { return e.sec.client.Clone() }

// CertDir holds the ensemble's CA (certs.CAFile, and its key), so that a
// test can issue more certificates the servers accept.
func (e *Ensemble) CertDir() string { return e.sec.dir }

// ClientFiles are the client certificate, key and CA files behind TLS,
// for a bankd process (--zk-tls-cert, --zk-tls-key, --zk-tls-ca).
func (e *Ensemble) ClientFiles() (crt, key, ca string) {
	crt, key = certs.NodeFiles(e.sec.dir, ClientName)
	return crt, key, filepath.Join(e.sec.dir, certs.CAFile)
}

// AuthFile writes Auth into a file of the test's own (mode 0600), for
// --zk-auth-file.
func (e *Ensemble) AuthFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "zookeeper.auth")
	if err := os.WriteFile(p, []byte(e.sec.auth+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Auth is digest credentials (user:password) for the bank under test.
// Any would do: ZooKeeper checks a digest against the ACLs, not against a
// list of users.
func (e *Ensemble) Auth() string { return e.sec.auth }

// Dial opens a raw go-zookeeper connection over TLS with the ensemble's
// client certificate and no other credentials, closed when the test ends.
func (e *Ensemble) Dial(t testing.TB) *zk.Conn {
	t.Helper()
	conn, _, err := zk.Connect(e.Connect(), 10*time.Second, zk.WithLogInfo(false), zk.WithDialer(zkdial.TLS(nil, e.sec.client)))
	if err != nil {
		t.Fatalf("zktest: connect: %v", err)
	}
	t.Cleanup(conn.Close)
	Eventually(t, 20*time.Second, "a ZooKeeper session", func() bool { return conn.State() == zk.StateHasSession })
	return conn
}

// SuperAuth is the super user's digest credentials, for a zkcoord
// session that plays a ZooKeeper operator.
func (e *Ensemble) SuperAuth() string { return "super:" + e.sec.super }

// Super is Dial authenticated as ZooKeeper's super user, which passes
// every ACL: what a ZooKeeper operator, or someone who stole their
// password, can do.
func (e *Ensemble) Super(t testing.TB) *zk.Conn {
	t.Helper()
	conn := e.Dial(t)
	if err := conn.AddAuth("digest", []byte("super:"+e.sec.super)); err != nil {
		t.Fatalf("zktest: super auth: %v", err)
	}
	return conn
}
