package systest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkbank/zkbank/certs"
	"github.com/zkbank/zkbank/cmd/bankd/internal/api"
	"github.com/zkbank/zkbank/cmd/bankd/internal/metrics"
	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/bankd/internal/peer"
	"github.com/zkbank/zkbank/cmd/internal/tlsconf"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/seal"
	"github.com/zkbank/zkbank/zkcoord"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

const sessionTimeout = 2 * time.Second

// cluster is a ZooKeeper ensemble and bankd nodes running in this
// process, with TLS as bankd runs it: a CA of the cluster's own, a node
// certificate each, and an admin client certificate for the test's calls.
type cluster struct {
	t         *testing.T
	ens       *zktest.Ensemble
	root      string
	tune      func(*node.Config)
	nodes     []*testNode
	certs     string // the certificate directory
	ca        *certs.CA
	client    *http.Client      // the admin's
	clientTLS *tlsconf.Material // its material, for a test to reload
	trust     *seal.Trust       // every node's: the log is sealed
	feed      api.FeedConfig    // the change feeds' bounds, for the nodes started after it is set
}

type testNode struct {
	id, dir, addr string
	cutter        *zktest.Cutter
	tls           *tlsconf.Material
	client        *http.Client // the admin's, for the test's calls
	n             *node.Node
	srv           *http.Server
}

// newCluster starts nodes on ens (zktest.Shared unless the test stops
// ZooKeeper servers), under a root of the test's own.
func newCluster(t *testing.T, ens *zktest.Ensemble, nodes int, tune func(*node.Config)) *cluster {
	c := &cluster{t: t, ens: ens, root: zktest.Root(t), tune: tune, certs: t.TempDir()}
	c.makeCerts(nodes)
	for i := range nodes {
		id := fmt.Sprintf("n%d", i+1)
		tn := &testNode{id: id, dir: filepath.Join(t.TempDir(), "data"), addr: "127.0.0.1:0", tls: c.material(certs.NodeFiles(c.certs, id)), client: c.client}
		c.nodes = append(c.nodes, tn)
		c.start(tn)
	}
	t.Cleanup(func() {
		for _, tn := range c.nodes {
			c.stop(tn)
		}
	})
	c.waitReady(c.nodes...)
	return c
}

// makeCerts makes the cluster's CA, a node certificate for n1..nN and
// the admin's client certificate.
func (c *cluster) makeCerts(nodes int) {
	var err error
	if c.ca, err = certs.NewCA(c.certs, "test"); err != nil {
		c.t.Fatal(err)
	}
	for i := range nodes {
		if _, err := c.ca.IssueNode(c.certs, fmt.Sprintf("n%d", i+1), []string{"127.0.0.1"}); err != nil {
			c.t.Fatal(err)
		}
	}
	if _, err := c.ca.IssueClient(c.certs, "admin", "admin"); err != nil {
		c.t.Fatal(err)
	}
	c.clientTLS = c.material(certs.ClientFiles(c.certs, "admin"))
	c.trust = c.sealTrust()
	c.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: c.clientTLS.Client(nil)}}
}

// sealTrust gives the cluster a cluster id and a data key (seal.InitDir)
// and reads them, as bankd does from its --certs-dir.
func (c *cluster) sealTrust() *seal.Trust {
	c.t.Helper()
	if err := seal.InitDir(c.certs); err != nil {
		c.t.Fatal(err)
	}
	trust, err := seal.LoadDir(c.certs)
	if err != nil {
		c.t.Fatal(err)
	}
	return trust
}

// material loads a certificate and key with the cluster's CA bundle.
func (c *cluster) material(crt, key string) *tlsconf.Material {
	c.t.Helper()
	m, err := tlsconf.Load(tlsconf.Files{Cert: crt, Key: key, CA: filepath.Join(c.certs, certs.CAFile)})
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

// httpClient is a client presenting the certificate crt.
func (c *cluster) httpClient(crt, key string) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: c.material(crt, key).Client(nil)}}
}

// start runs tn on its data dir and address (a restart keeps both).
func (c *cluster) start(tn *testNode) {
	c.t.Helper()
	tcp, err := net.Listen("tcp", tn.addr)
	if err != nil {
		c.t.Fatal(err)
	}
	ln := tls.NewListener(tcp, tn.tls.Server())
	tn.addr = ln.Addr().String()
	tn.cutter = &zktest.Cutter{}
	// The peer client asks the node it serves; read through an atomic, not
	// tn.n, which stop clears while a handshake may be running.
	var started atomic.Pointer[node.Node]
	revoked := func(serial string) bool { n := started.Load(); return n != nil && n.Revoked(serial) }
	m := metrics.New()
	cfg := c.configWith(tn, peer.NewTransport(peer.Config{Client: peer.Client(tn.tls, revoked), CallTimeout: 3*sessionTimeout + time.Second, Stage: m.Stage}), m.Hooks())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if tn.n, err = node.Start(ctx, cfg); err != nil {
		ln.Close()
		c.t.Fatalf("start %s: %v", tn.id, err)
	}
	started.Store(tn.n)
	m.Watch(tn.n.Status)
	handler := api.New(tn.n, api.Config{
		WriteTimeout: 3 * sessionTimeout, Internal: peer.Handler(tn.n), MetricsHandle: m.Handler(), Observe: m.Observe, Feed: c.feed,
	})
	tn.srv = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	tn.srv.RegisterOnShutdown(handler.EndFeeds) // as bankd does
	go tn.srv.Serve(ln)
}

// config is tn's node configuration with transport (nil for a restore),
// as the test tunes it, but for its hooks.
func (c *cluster) config(tn *testNode, transport node.Transport) node.Config {
	return c.configWith(tn, transport, node.Hooks{})
}

// configWith is config with the metrics' hooks, set before the test's
// tune so that a tune can wrap them.
func (c *cluster) configWith(tn *testNode, transport node.Transport, hooks node.Hooks) node.Config {
	if tn.cutter == nil {
		tn.cutter = &zktest.Cutter{}
	}
	cfg := node.Config{
		ID: tn.id, Addr: "https://" + tn.addr, DataDir: tn.dir,
		ZooKeeper: zkcoord.Config{Servers: c.ens.Connect(), Root: c.root, TLS: c.ens.TLS(), Auth: c.ens.Auth(), SessionTimeout: sessionTimeout, Dialer: tn.cutter.Dial},
		Logger:    slog.New(slog.NewTextHandler(zktest.LogWriter(c.t), &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", tn.id),
		Serial:    func() string { return certs.Serial(tn.tls.Leaf()) },
		Seal:      &node.SealConfig{Trust: c.trust, Identity: tn.tls.Identity},
		Transport: transport,
		Hooks:     hooks,
	}
	if c.tune != nil {
		c.tune(&cfg)
	}
	return cfg
}

// superSession is a session in the bank's namespace as ZooKeeper's super
// user, who may do anything there (an outsider with the ensemble's keys).
func (c *cluster) superSession() *zkcoord.Session {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := zkcoord.Connect(ctx, zkcoord.Config{Servers: c.ens.Connect(), Root: c.root, TLS: c.ens.TLS(), Auth: c.ens.SuperAuth(), SessionTimeout: 4 * time.Second})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(s.Close)
	return s
}

// stop shuts tn down the way SIGTERM does.
func (c *cluster) stop(tn *testNode) {
	if tn.n == nil {
		return
	}
	tn.srv.Close()
	if err := tn.n.Close(); err != nil {
		c.t.Errorf("%s stopped with: %v", tn.id, err)
	}
	tn.n = nil
}

func (c *cluster) waitReady(nodes ...*testNode) {
	c.t.Helper()
	zktest.Eventually(c.t, 30*time.Second, "nodes ready", func() bool {
		for _, tn := range nodes {
			if tn.n == nil || !tn.n.Ready() {
				return false
			}
		}
		_, ok := c.leader()
		return ok
	})
}

// leader is the node that leads now.
func (c *cluster) leader() (*testNode, bool) {
	for _, tn := range c.nodes {
		if tn.n != nil && tn.n.Status().Leader {
			return tn, true
		}
	}
	return nil, false
}

func (c *cluster) followers() []*testNode {
	var out []*testNode
	for _, tn := range c.nodes {
		if tn.n != nil && !tn.n.Status().Leader {
			out = append(out, tn)
		}
	}
	return out
}

// converged waits until every running node has applied the same index and
// reports the same digest, and returns it.
func (c *cluster) converged() wire.Digest {
	c.t.Helper()
	var d wire.Digest
	zktest.Eventually(c.t, 30*time.Second, "digests agree", func() bool {
		var first *wire.Digest
		for _, tn := range c.nodes {
			if tn.n == nil {
				continue
			}
			var got wire.Digest
			if r := call(c.t, tn, "GET", "/v1/digest", nil, nil); r.status != 200 || json.Unmarshal(r.body, &got) != nil {
				return false
			}
			if first == nil {
				first = &got
			} else if got != *first {
				return false
			}
		}
		d = *first
		return true
	})
	return d
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) problem() wire.Problem {
	var p wire.Problem
	json.Unmarshal(r.body, &p)
	return p
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body)) }

// call sends a request to tn as the admin; body is JSON-encoded unless
// it is a string (sent as is). Transport errors fail the test.
func call(t testing.TB, tn *testNode, method, path string, body any, header map[string]string) response {
	t.Helper()
	r, err := tryCall(tn, method, path, body, header)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, tn.id, err)
	}
	return r
}

func tryCall(tn *testNode, method, path string, body any, header map[string]string) (response, error) {
	return callAs(tn.client, tn, method, path, body, header)
}

// callAs sends a request to tn with client.
func callAs(client *http.Client, tn *testNode, method, path string, body any, header map[string]string) (response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, "https://"+tn.addr+path, rd)
	if err != nil {
		return response{}, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, data}, err
}

func decode[T any](t testing.TB, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %s: %v", r, err)
	}
	return v
}
