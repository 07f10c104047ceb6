package systest

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkbank/zkbank/certs"
	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/internal/tlsconf"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// TestOnlyTheRightCertificatesGetIn: plain HTTP gets no API; the API
// takes a client certificate of the cluster's CA and nothing else; the
// internal routes take only a node certificate; another CA's certificates
// fail the handshake; the probes stay open.
func TestOnlyTheRightCertificatesGetIn(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 1), 2, nil)
	leader, _ := c.leader()
	mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: "S-1", Name: "Sec"}, nil), 201)

	plain, err := http.Get("http://" + leader.addr + "/v1/accounts/S-1")
	if err == nil {
		body, _ := io.ReadAll(plain.Body)
		plain.Body.Close()
		if plain.StatusCode != 400 || strings.Contains(string(body), "S-1") {
			t.Fatalf("plain HTTP: %d %s", plain.StatusCode, body)
		}
	}

	anonymous := &http.Client{Transport: &http.Transport{TLSClientConfig: c.material("", "").Client(nil)}}
	r, err := callAs(anonymous, leader, "GET", "/v1/accounts/S-1", nil, nil)
	if err != nil || r.status != 401 || r.problem().Code != "unauthenticated" || r.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no certificate: %s %v", r, err)
	}
	if r, err := callAs(anonymous, leader, "GET", "/readyz", nil, nil); err != nil || r.status != 200 {
		t.Fatalf("readyz without a certificate: %s %v", r, err)
	}
	if r, err := callAs(anonymous, leader, "GET", "/metrics", nil, nil); err != nil || r.status != 200 || strings.Contains(string(r.body), "S-1") {
		t.Fatalf("metrics without a certificate: %d %v", r.status, err)
	}
	if r := call(t, leader, "POST", "/internal/v1/read-index", "{}", nil); r.status != 403 || r.problem().Code != "forbidden" {
		t.Fatalf("the admin's client certificate on /internal/: %s", r)
	}
	asNode := c.httpClient(certs.NodeFiles(c.certs, "n2"))
	if r, err := callAs(asNode, leader, "GET", "/v1/accounts/S-1", nil, nil); err != nil || r.status != 403 {
		t.Fatalf("a node certificate on the API: %s %v", r, err)
	}
	if r, err := callAs(asNode, leader, "POST", "/internal/v1/read-index", "{}", nil); err != nil || r.status != 200 {
		t.Fatalf("a node certificate on /internal/: %s %v", r, err)
	}

	other := otherCA(t)
	for name, cl := range map[string]*http.Client{
		"another CA's node certificate":   other.client(certs.NodeFiles(other.dir, "n1")),
		"another CA's client certificate": other.client(certs.ClientFiles(other.dir, "admin")),
	} {
		if r, err := callAs(cl, leader, "POST", "/internal/v1/read-index", "{}", nil); err == nil {
			t.Errorf("%s: %s, want the handshake to fail", name, r)
		}
	}
	trustsOther := &http.Client{Transport: &http.Transport{TLSClientConfig: other.material("", "").Client(nil)}}
	if r, err := callAs(trustsOther, leader, "GET", "/readyz", nil, nil); err == nil {
		t.Errorf("a client trusting another CA reached the node: %s", r)
	}
}

// caDir is a second CA, with a node and an admin certificate of its own.
type caDir struct {
	t   *testing.T
	dir string
}

func otherCA(t *testing.T) caDir {
	d := caDir{t: t, dir: t.TempDir()}
	ca, err := certs.NewCA(d.dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.IssueNode(d.dir, "n1", []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.IssueClient(d.dir, "admin", "admin"); err != nil {
		t.Fatal(err)
	}
	return d
}

// material is crt and key (any CA's) with this CA's bundle.
func (d caDir) material(crt, key string) *tlsconf.Material {
	m, err := tlsconf.Load(tlsconf.Files{Cert: crt, Key: key, CA: filepath.Join(d.dir, certs.CAFile)})
	if err != nil {
		d.t.Fatal(err)
	}
	return m
}

// client presents crt, trusting the cluster's servers anyway (so that
// what fails is the server refusing the certificate).
func (d caDir) client(crt, key string) *http.Client { return forcedClient(d.t, crt, key) }

// forcedClient presents crt whatever the server asks for, and trusts any
// server.
func forcedClient(t *testing.T, crt, key string) *http.Client {
	pair, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		MinVersion: tls.VersionTLS13, InsecureSkipVerify: true,
		// Sent whatever CAs the server names, so that the server must judge it.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil },
	}}}
}

// TestARevokedCertificateIsRefusedByEveryNode: a revocation goes
// through the log; once a node applied it, that node refuses the
// certificate, a node's on /internal/ as a client's on the API.
func TestARevokedCertificateIsRefusedByEveryNode(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 1), 3, nil)
	if _, err := c.ca.IssueNode(c.certs, "n9", []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	teller, err := c.ca.IssueClient(c.certs, "tess", "teller")
	if err != nil {
		t.Fatal(err)
	}
	n9 := c.httpClient(certs.NodeFiles(c.certs, "n9"))
	tess := c.httpClient(certs.ClientFiles(c.certs, "tess"))
	for _, tn := range c.nodes {
		if r, err := callAs(n9, tn, "POST", "/internal/v1/read-index", "{}", nil); err != nil || r.status == 401 || r.status == 403 {
			t.Fatalf("n9 before its revocation, on %s: %s %v", tn.id, r, err)
		}
	}
	if r, err := callAs(tess, c.nodes[0], "POST", "/v1/admin/revocations", wire.Revocation{Serial: "7"}, nil); err != nil || r.status != 403 {
		t.Fatalf("a teller revoking: %s %v", r, err)
	}
	var index string
	for _, serial := range []string{certs.Serial(nodeLeaf(t, c.certs, "n9")), certs.Serial(teller)} {
		r := call(t, c.nodes[1], "POST", "/v1/admin/revocations", wire.Revocation{Serial: serial}, nil)
		mustOK(t, r, 200)
		index = r.header.Get(wire.HeaderIndex)
	}
	for _, tn := range c.nodes {
		call(t, tn, "GET", "/v1/digest?min_index="+index, nil, nil)
		if r, err := callAs(n9, tn, "POST", "/internal/v1/read-index", "{}", nil); err != nil || r.status != 401 {
			t.Errorf("revoked n9 on %s after index %s: %s %v", tn.id, index, r, err)
		}
		if r, err := callAs(tess, tn, "GET", "/v1/cluster", nil, nil); err != nil || r.status != 401 {
			t.Errorf("revoked tess on %s after index %s: %s %v", tn.id, index, r, err)
		}
	}
	list := decode[wire.Revocations](t, call(t, c.nodes[2], "GET", "/v1/admin/revocations", nil, nil))
	if len(list.Revocations) != 2 {
		t.Fatalf("revocations %+v", list)
	}
}

func nodeLeaf(t *testing.T, dir, id string) *x509.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certs.NodeFiles(dir, id))
	if err != nil {
		t.Fatal(err)
	}
	return pair.Leaf
}

// TestACARolloverDropsNoRequest: with writes going on, the CA is rolled
// over (every node and client trusting the bundle of both, certificates
// reissued by the new CA, the old one dropped); no request fails, and a
// certificate of the old CA is refused at the end.
func TestACARolloverDropsNoRequest(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 1), 3, nil)
	leader, _ := c.leader()
	mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: "R-1", Name: "Roll"}, nil), 201)
	oldCrt, oldKey := filepath.Join(t.TempDir(), "old.crt"), filepath.Join(t.TempDir(), "old.key")
	copyFile(t, filepath.Join(c.certs, "client-admin.crt"), oldCrt)
	copyFile(t, filepath.Join(c.certs, "client-admin.key"), oldKey)
	load := startLoad(t, c)

	reloadAll := func() {
		for _, tn := range c.nodes {
			if err := tn.tls.Reload(); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.clientTLS.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	ca, err := certs.Rollover(c.certs, "test-2")
	if err != nil {
		t.Fatal(err)
	}
	reloadAll()
	load.progress(t, 20)
	for _, tn := range c.nodes {
		if _, err := ca.IssueNode(c.certs, tn.id, []string{"127.0.0.1"}); err != nil {
			t.Fatal(err)
		}
		if err := tn.tls.Reload(); err != nil {
			t.Fatal(err)
		}
		load.progress(t, 10)
	}
	if _, err := ca.IssueClient(c.certs, "admin", "admin"); err != nil {
		t.Fatal(err)
	}
	reloadAll()
	if err := certs.DropOld(c.certs); err != nil {
		t.Fatal(err)
	}
	reloadAll()
	load.progress(t, 20)
	if failed := load.stop(); failed > 0 {
		t.Fatalf("%d requests failed during the rollover", failed)
	}
	old := forcedClient(t, oldCrt, oldKey)
	if r, err := callAs(old, leader, "GET", "/v1/accounts/R-1", nil, nil); err == nil {
		t.Fatalf("a certificate of the dropped CA got %s", r)
	}
	for _, tn := range c.nodes {
		if got := tn.tls.Leaf().Issuer.CommonName; got != "test-2" {
			t.Fatalf("%s presents a certificate of %q", tn.id, got)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// load deposits into R-1 through every node, one request at a time per
// node, counting acknowledgements and failures.
type load struct {
	acked, failed atomic.Int64
	stopCh        chan struct{}
	wg            sync.WaitGroup
}

func startLoad(t *testing.T, c *cluster) *load {
	l := &load{stopCh: make(chan struct{})}
	for i, tn := range c.nodes {
		l.wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-l.stopCh:
					return
				default:
				}
				r, err := tryCall(tn, "POST", "/v1/accounts/R-1/deposit", wire.Amount{Amount: 1}, map[string]string{wire.HeaderIdempotencyKey: fmt.Sprintf("l%d-%d", i, n)})
				if err != nil || r.status != 200 {
					t.Logf("a request failed: %v %s", err, r)
					l.failed.Add(1)
				} else {
					l.acked.Add(1)
				}
			}
		})
	}
	return l
}

func (l *load) progress(t *testing.T, n int64) {
	t.Helper()
	start := l.acked.Load()
	zktest.Eventually(t, 30*time.Second, "requests acknowledged", func() bool { return l.acked.Load() >= start+n })
}

func (l *load) stop() int64 {
	close(l.stopCh)
	l.wg.Wait()
	return l.failed.Load()
}

// TestBadTLSInputHarmsNothing: garbage bytes, a handshake cut half way
// and a certificate chain far over the handshake's size limit are
// refused; the node serves on, and no goroutine is left behind.
func TestBadTLSInputHarmsNothing(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 1), 1, nil)
	tn := c.nodes[0]
	call(t, tn, "GET", "/readyz", nil, nil)
	before := runtime.NumGoroutine()
	garbage := make([]byte, 4096)
	rand.Read(garbage)
	for range 20 {
		sendRaw(t, tn.addr, garbage, true)
		sendRaw(t, tn.addr, clientHelloPrefix(t, tn.addr), false)
	}
	huge := hugeClient(c)
	for range 5 {
		if r, err := callAs(huge, tn, "GET", "/v1/cluster", nil, nil); err == nil {
			t.Fatalf("a huge certificate chain got %s", r)
		}
	}
	if r := call(t, tn, "GET", "/readyz", nil, nil); r.status != 200 {
		t.Fatalf("after the bad input: %s", r)
	}
	c.client.CloseIdleConnections()
	zktest.Eventually(t, 20*time.Second, "the bad connections' goroutines gone", func() bool {
		return runtime.NumGoroutine() <= before+2
	})
}

// hugeClient presents a certificate chain of 700 copies of a certificate
// (some 350 KB, past the 256 KB Go takes in one certificate message).
func hugeClient(c *cluster) *http.Client {
	pair, err := tls.LoadX509KeyPair(certs.ClientFiles(c.certs, "admin"))
	if err != nil {
		c.t.Fatal(err)
	}
	for range 700 {
		pair.Certificate = append(pair.Certificate, pair.Certificate[0])
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		MinVersion: tls.VersionTLS13, InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil },
	}}}
}

// sendRaw writes b to addr, reads what comes back (or waits for the
// server to close) unless cut, and closes.
func sendRaw(t *testing.T, addr string, b []byte, read bool) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write(b)
	if read {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, bufio.NewReader(conn))
	}
}

// clientHelloPrefix is the first half of a real TLS ClientHello.
func clientHelloPrefix(t *testing.T, addr string) []byte {
	var rec recorder
	cl := tls.Client(&rec, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	cl.SetDeadline(time.Now().Add(100 * time.Millisecond))
	cl.Handshake() // fails: the recorder never answers
	return rec.buf[:len(rec.buf)/2]
}

// recorder is a net.Conn that keeps what is written and never answers.
type recorder struct {
	net.Conn
	buf []byte
}

func (r *recorder) Write(b []byte) (int, error)      { r.buf = append(r.buf, b...); return len(b), nil }
func (r *recorder) Read([]byte) (int, error)         { return 0, io.EOF }
func (r *recorder) SetDeadline(time.Time) error      { return nil }
func (r *recorder) SetReadDeadline(time.Time) error  { return nil }
func (r *recorder) SetWriteDeadline(time.Time) error { return nil }
func (r *recorder) Close() error                     { return nil }

// TestRemovingANodeRevokesItsCertificates: a live node is not removed; a
// stopped one is, with every certificate it ran with revoked through the
// log and its registry record gone; started again with such a
// certificate, it stops and leaves the registry.
func TestRemovingANodeRevokesItsCertificates(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 1), 3, nil)
	n3 := c.nodes[2]
	serial := certs.Serial(n3.tls.Leaf())
	if r := call(t, c.nodes[0], "DELETE", "/v1/admin/members/n3", nil, nil); r.status != 409 || r.problem().Code != wire.CodeMemberLive {
		t.Fatalf("removing a live node: %s", r)
	}
	c.stop(n3)
	zktest.Eventually(t, 10*time.Second, "n3 not live", func() bool {
		return !memberState(t, c.nodes[0], "n3").Live
	})
	r := call(t, c.nodes[0], "DELETE", "/v1/admin/members/n3", nil, nil)
	mustOK(t, r, 200)
	rm := decode[wire.MemberRemoval](t, r)
	if len(rm.Revoked) != 1 || rm.Revoked[0] != serial || rm.Index == 0 {
		t.Fatalf("removal %+v, want %s revoked", rm, serial)
	}
	if m := memberState(t, c.nodes[1], "n3"); m.Expected {
		t.Fatalf("n3 is still expected after its removal: %+v", m)
	}
	if r := call(t, c.nodes[1], "DELETE", "/v1/admin/members/n3", nil, nil); r.status != 404 || r.problem().Code != wire.CodeMemberNotFound {
		t.Fatalf("removing n3 again: %s", r)
	}
	asN3 := c.httpClient(certs.NodeFiles(c.certs, "n3"))
	for _, tn := range c.nodes[:2] {
		call(t, tn, "GET", fmt.Sprintf("/v1/digest?min_index=%d", rm.Index), nil, nil)
		if r, err := callAs(asN3, tn, "POST", "/internal/v1/read-index", "{}", nil); err != nil || r.status != 401 {
			t.Errorf("removed n3's certificate on %s: %s %v", tn.id, r, err)
		}
	}

	c.start(n3) // with its old data dir and its revoked certificate
	select {
	case <-n3.n.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("n3 with a revoked certificate kept running")
	}
	if err := n3.n.Err(); !errors.Is(err, node.ErrRevoked) {
		t.Fatalf("n3 stopped with %v, want ErrRevoked", err)
	}
	n3.srv.Close()
	n3.n = nil
	if m := memberState(t, c.nodes[0], "n3"); m.Expected || m.Live {
		t.Fatalf("n3 after its revoked restart: %+v", m)
	}
}

// memberState is what tn's /v1/cluster says of member id (the zero
// Member when it says nothing).
func memberState(t *testing.T, tn *testNode, id string) wire.Member {
	t.Helper()
	for _, m := range decode[wire.Cluster](t, call(t, tn, "GET", "/v1/cluster", nil, nil)).Members {
		if m.ID == id {
			return m
		}
	}
	return wire.Member{}
}
