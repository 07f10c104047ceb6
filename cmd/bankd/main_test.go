package main

import (
	"bytes"
	"crypto/tls"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zkbank/zkbank/certs"
	"github.com/zkbank/zkbank/cmd/internal/tlsconf"
	"github.com/zkbank/zkbank/seal"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

func TestOptionsFromFlagsAndEnvironment(t *testing.T) {
	t.Setenv("BANKD_ID", "env-id")
	t.Setenv("BANKD_DATA_DIR", "/tmp/env")
	t.Setenv("BANKD_SESSION_TIMEOUT", "7s")
	t.Setenv("BANKD_CERTS_DIR", "/etc/zkbank/certs")
	o, err := parseOptions([]string{"--data-dir", "/tmp/flag"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.id != "env-id" || o.dataDir != "/tmp/flag" || o.sessionTimeout != 7*time.Second {
		t.Fatalf("options %+v: want id from the environment, data dir from the flag", o)
	}
	var help bytes.Buffer
	if _, err := parseOptions([]string{"--help"}, &help); err != flag.ErrHelp || !strings.Contains(help.String(), "BANKD_") {
		t.Fatalf("--help: %v\n%s", err, help.String())
	}
}

func TestGOGCReplacesOnlyTheDefaultGCPercent(t *testing.T) {
	base := []string{"--id", "n1", "--data-dir", "d", "--insecure"}
	o, err := parseOptions(base, &bytes.Buffer{})
	if err != nil || o.keepGOGC || o.gcPercent != defaultGCPercent {
		t.Fatalf("no GOGC: keep %v percent %d (%v), want the default applied", o.keepGOGC, o.gcPercent, err)
	}
	t.Setenv("GOGC", "200")
	if o, err = parseOptions(base, &bytes.Buffer{}); err != nil || !o.keepGOGC {
		t.Fatalf("GOGC set: keep %v (%v), want GOGC left in charge", o.keepGOGC, err)
	}
	if o, err = parseOptions(append(base, "--gc-percent", "80"), &bytes.Buffer{}); err != nil || o.keepGOGC || o.gcPercent != 80 {
		t.Fatalf("GOGC and --gc-percent: keep %v percent %d (%v), want the flag", o.keepGOGC, o.gcPercent, err)
	}
}

func TestInvalidOptionsAreClearErrors(t *testing.T) {
	base := []string{"--id", "n1", "--data-dir", "d", "--insecure"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--data-dir", "d"}, "--id is required"},
		{[]string{"--id", "n 1", "--data-dir", "d"}, "--id"},
		{[]string{"--id", "n1"}, "--data-dir is required"},
		{append(base, "--session-timeout", "10ms"), "--session-timeout"},
		{append(base, "--zk", "nohost"), "--zk server"},
		{append(base, "--zk-root", "bank"), "--zk-root"},
		{append(base, "--listen", "8080"), "--listen"},
		{append(base, "--log-level", "loud"), "--log-level"},
		{append(base, "--batch-bytes", "10"), "--batch-bytes"},
		{append(base, "--gc-percent", "0"), "--gc-percent"},
		{append(base, "extra"), "unexpected arguments"},
		{[]string{"--id", "n1", "--data-dir", "d"}, "HTTPS only"},
	} {
		_, err := parseOptions(tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one about %s", tc.args, err, tc.want)
		}
	}
}

// bankdProc is a bankd binary running against a ZooKeeper of its own,
// with a certificate directory made for it.
type bankdProc struct {
	t     *testing.T
	cmd   *exec.Cmd
	addr  string
	certs string
	logs  *syncBuffer
	http  *http.Client // as the admin
}

// startBankd builds and starts bankd n1 with extra flags; with secure it
// gets --certs-dir, else --insecure.
func startBankd(t *testing.T, secure bool, extra ...string) *bankdProc {
	ens := zktest.Start(t, 1)
	bin := filepath.Join(t.TempDir(), "bankd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	p := &bankdProc{t: t, addr: freeAddr(t), certs: t.TempDir(), logs: &syncBuffer{}}
	args := []string{"--id", "n1", "--data-dir", t.TempDir(), "--zk", strings.Join(ens.Connect(), ","),
		"--zk-root", zktest.Root(t), "--listen", p.addr, "--session-timeout", "2s"}
	zkCrt, zkKey, zkCA := ens.ClientFiles()
	args = append(args, "--zk-tls-cert", zkCrt, "--zk-tls-key", zkKey, "--zk-tls-ca", zkCA, "--zk-auth-file", ens.AuthFile(t))
	if secure {
		ca, err := certs.NewCA(p.certs, "test")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ca.IssueNode(p.certs, "n1", []string{"127.0.0.1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := ca.IssueClient(p.certs, "admin", "admin"); err != nil {
			t.Fatal(err)
		}
		if err := seal.InitDir(p.certs); err != nil { // data.keys and cluster.id, as bankctl certs ca makes them
			t.Fatal(err)
		}
		mat, err := tlsconf.Load(tlsconf.Files{Cert: filepath.Join(p.certs, "client-admin.crt"), Key: filepath.Join(p.certs, "client-admin.key"), CA: filepath.Join(p.certs, certs.CAFile)})
		if err != nil {
			t.Fatal(err)
		}
		p.http = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: mat.Client(nil)}}
		args = append(args, "--certs-dir", p.certs)
	} else {
		p.http = &http.Client{Timeout: 10 * time.Second}
		args = append(args, "--insecure")
	}
	p.cmd = exec.Command(bin, append(args, extra...)...)
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); p.get("/readyz") != 200; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("bankd not ready after 20s; its log:\n%s", p.logs)
		}
	}
	return p
}

func (p *bankdProc) url(path string) string {
	if p.cmd.Args[len(p.cmd.Args)-1] == "--insecure" {
		return "http://" + p.addr + path
	}
	return "https://" + p.addr + path
}

func (p *bankdProc) get(path string) int {
	resp, err := p.http.Get(p.url(path))
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestSIGTERMShutsDownGracefully runs the real binary against ZooKeeper:
// it becomes ready, and on SIGTERM it leaves the cluster and exits 0.
func TestSIGTERMShutsDownGracefully(t *testing.T) {
	p := startBankd(t, true)
	p.cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, p.logs)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("still running 15s after SIGTERM:\n%s", p.logs)
	}
	if !strings.Contains(p.logs.String(), "shutting down") {
		t.Fatalf("no shutdown in the log:\n%s", p.logs)
	}
}

// TestInsecureIsSaidLoudly: without certificates bankd needs --insecure,
// and then says so in its log and in /v1/cluster.
func TestInsecureIsSaidLoudly(t *testing.T) {
	p := startBankd(t, false)
	resp, err := p.http.Get(p.url("/v1/cluster"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `"insecure":true`) || !strings.Contains(p.logs.String(), "INSECURE") {
		t.Fatalf("--insecure not announced:\n%s\n%s", body, p.logs)
	}
}

// TestSIGHUPRotatesTheCertificateUnderLoad: a new node certificate put in
// place and a SIGHUP: new connections get it, and no request fails, on
// the connections kept alive or on new ones.
func TestSIGHUPRotatesTheCertificateUnderLoad(t *testing.T) {
	p := startBankd(t, true)
	served := func() string {
		conn, err := tls.Dial("tcp", p.addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return certs.Serial(conn.ConnectionState().PeerCertificates[0])
	}
	before := served()
	var failed, ok atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if w%2 == 1 { // half the workers on new connections
					p.http.CloseIdleConnections()
				}
				if p.get("/v1/cluster") == 200 {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		})
	}
	zktest.Eventually(t, 10*time.Second, "load", func() bool { return ok.Load() > 20 })
	ca, err := certs.LoadCA(p.certs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.IssueNode(p.certs, "n1", []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	zktest.Eventually(t, 10*time.Second, "the new certificate served", func() bool { return served() != before })
	mid := ok.Load()
	zktest.Eventually(t, 10*time.Second, "load after the rotation", func() bool { return ok.Load() > mid+20 })
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed around the rotation\n%s", failed.Load(), ok.Load()+failed.Load(), p.logs)
	}
	if !strings.Contains(p.logs.String(), "reloaded the TLS") {
		t.Fatalf("no reload in the log:\n%s", p.logs)
	}
}

// syncBuffer is a bytes.Buffer a process and a test may use at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

var update = flag.Bool("update", false, "rewrite docs/operations.md's flag table")

// TestOperationsDocListsEveryFlag: the flag table in docs/operations.md is
// the flag set's own (run with -update after changing a flag).
func TestOperationsDocListsEveryFlag(t *testing.T) {
	const path, begin, end = "../../docs/operations.md", "<!-- flags: begin -->\n", "<!-- flags: end -->"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(doc, []byte(begin)), bytes.Index(doc, []byte(end))
	if i < 0 || j < i {
		t.Fatalf("%s has no %q ... %q markers", path, begin, end)
	}
	want := flagTable()
	if got := string(doc[i+len(begin) : j]); got != want {
		if !*update {
			t.Fatalf("the flag table in %s is not the flag set's; run go test ./cmd/bankd -run TestOperationsDoc -update\nwant:\n%s", path, want)
		}
		out := append(append(append([]byte{}, doc[:i+len(begin)]...), want...), doc[j:]...)
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAPrincipalOverItsRateGets429: past --rate-limit a principal's
// requests are 429 rate_limited with Retry-After, logged (as a refusal,
// with the principal) and counted in /metrics.
func TestAPrincipalOverItsRateGets429(t *testing.T) {
	p := startBankd(t, true, "--rate-limit", "5")
	codes := map[int]int{}
	var retryAfter string
	for range 20 {
		resp, err := p.http.Get(p.url("/v1/accounts"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes[resp.StatusCode]++
		if resp.StatusCode == 429 {
			retryAfter = resp.Header.Get("Retry-After")
		}
	}
	if codes[200] < 5 || codes[429] == 0 || retryAfter == "" {
		t.Fatalf("20 requests at --rate-limit 5: %v, Retry-After %q", codes, retryAfter)
	}
	if !strings.Contains(p.logs.String(), "request refused") || !strings.Contains(p.logs.String(), "rate_limited") || !strings.Contains(p.logs.String(), "principal=admin") {
		t.Fatalf("no refusal in the log:\n%s", p.logs)
	}
	resp, err := p.http.Get(p.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `zkbank_auth_events_total{kind="refused",what="rate_limited"}`) {
		t.Fatal("no rate_limited refusal in /metrics")
	}
}
