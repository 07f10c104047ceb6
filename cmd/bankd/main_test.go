package main

import (
	"bytes"
	"flag"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zkbank/zkbank/zkcoord/zktest"
)

func TestOptionsFromFlagsAndEnvironment(t *testing.T) {
	t.Setenv("BANKD_ID", "env-id")
	t.Setenv("BANKD_DATA_DIR", "/tmp/env")
	t.Setenv("BANKD_SESSION_TIMEOUT", "7s")
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
	base := []string{"--id", "n1", "--data-dir", "d"}
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
	base := []string{"--id", "n1", "--data-dir", "d"}
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
	} {
		_, err := parseOptions(tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one about %s", tc.args, err, tc.want)
		}
	}
}

// TestSIGTERMShutsDownGracefully runs the real binary against ZooKeeper:
// it becomes ready, and on SIGTERM it leaves the cluster and exits 0.
func TestSIGTERMShutsDownGracefully(t *testing.T) {
	ens := zktest.Start(t, 1)
	bin := filepath.Join(t.TempDir(), "bankd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--id", "n1", "--data-dir", t.TempDir(), "--zk", strings.Join(ens.Connect(), ","),
		"--zk-root", "/sigterm", "--listen", addr, "--session-timeout", "2s")
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	deadline := time.Now().Add(20 * time.Second)
	for !ready(addr) {
		if time.Now().After(deadline) {
			t.Fatalf("not ready:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("still running 15s after SIGTERM:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "shutting down") {
		t.Fatalf("no shutdown in the log:\n%s", logs.String())
	}
}

func ready(addr string) bool {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
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
