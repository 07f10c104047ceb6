// Package deploy holds what an operator installs (systemd units, ZooKeeper
// and bankd configuration, docs/deployment.md); its tests check that each
// piece is one the tools accept.
package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnitsVerify runs systemd-analyze verify on every unit, with
// the binaries it names present: bankd built here in place of
// /usr/local/bin/bankd, Debian's java as it is.
func TestSystemdUnitsVerify(t *testing.T) {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze not found: make test installs the systemd package")
	}
	dir := t.TempDir()
	bankd := filepath.Join(dir, "bankd")
	if out, err := exec.Command("go", "build", "-o", bankd, "../cmd/bankd").CombinedOutput(); err != nil {
		t.Fatalf("build bankd: %v\n%s", err, out)
	}
	units, _ := filepath.Glob("systemd/*.service")
	if len(units) < 2 {
		t.Fatalf("units: %v", units)
	}
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), "/usr/local/bin/bankd", bankd)
		p := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(tool, "verify", p).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", u, err, out)
		}
	}
}

// TestZooKeeperConfigsListTheirEnsemble: each configuration names as many
// servers as its file says, on distinct addresses, with TLS only.
func TestZooKeeperConfigsListTheirEnsemble(t *testing.T) {
	for file, n := range map[string]int{"zookeeper/zoo-3.cfg": 3, "zookeeper/zoo-5.cfg": 5} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		addrs := map[string]bool{}
		settings := map[string]string{}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
			if !ok || strings.HasPrefix(k, "#") {
				continue
			}
			settings[k] = v
			if strings.HasPrefix(k, "server.") {
				addrs[strings.Split(v, ":")[0]] = true
			}
		}
		if len(addrs) != n {
			t.Errorf("%s: %d server addresses, want %d", file, len(addrs), n)
		}
		for k, want := range map[string]string{"sslQuorum": "true", "ssl.clientAuth": "need", "ssl.quorum.hostnameVerification": "true"} {
			if settings[k] != want {
				t.Errorf("%s: %s=%q, want %q", file, k, settings[k], want)
			}
		}
		if _, plain := settings["clientPort"]; plain {
			t.Errorf("%s opens a plaintext clientPort", file)
		}
	}
}
