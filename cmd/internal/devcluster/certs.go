package devcluster

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zkbank/zkbank/cmd/internal/certs"
	"github.com/zkbank/zkbank/cmd/internal/tlsconf"
)

// AdminName is the dev cluster's admin client certificate's principal.
const AdminName = "admin"

// CertsDir is where a dev cluster keeps its certificates (bankctl certs'
// layout).
func CertsDir(dir string) string { return filepath.Join(dir, "certs") }

// EnvPath is the file that points bankctl at the cluster.
func EnvPath(dir string) string { return filepath.Join(dir, "env.sh") }

// ensureCerts makes the cluster's CA, a node certificate for every node
// (valid for 127.0.0.1 and localhost) and an admin client certificate,
// keeping those already there from an earlier start.
func ensureCerts(cfg *Config) error {
	dir := CertsDir(cfg.Dir)
	ca, err := certs.LoadCA(dir)
	if errors.Is(err, os.ErrNotExist) {
		ca, err = certs.NewCA(dir, "zkbank dev CA")
	}
	if err != nil {
		return fmt.Errorf("devcluster: %w", err)
	}
	for i := range cfg.Nodes {
		id := fmt.Sprintf("n%d", i+1)
		if crt, _ := certs.NodeFiles(dir, id); !exists(crt) {
			if _, err := ca.IssueNode(dir, id, []string{"127.0.0.1", "localhost"}); err != nil {
				return fmt.Errorf("devcluster: %w", err)
			}
		}
	}
	if crt, _ := certs.ClientFiles(dir, AdminName); !exists(crt) {
		if _, err := ca.IssueClient(dir, AdminName, "admin"); err != nil {
			return fmt.Errorf("devcluster: %w", err)
		}
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// AdminFiles are the admin's TLS files of the dev cluster in dir.
func AdminFiles(dir string) tlsconf.Files {
	crt, key := certs.ClientFiles(CertsDir(dir), AdminName)
	return tlsconf.Files{Cert: crt, Key: key, CA: filepath.Join(CertsDir(dir), certs.CAFile)}
}

// writeEnv writes env.sh: what `source` needs to point bankctl at the
// cluster, with the admin's credentials.
func writeEnv(cfg Config, insecure bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Points bankctl at the dev cluster in %s: source this file.\n", cfg.Dir)
	fmt.Fprintf(&b, "export BANKCTL_ENDPOINTS=%s\nexport BANKCTL_DEV_DIR=%s\n", strings.Join(cfg.URLs(), ","), cfg.Dir)
	if !insecure {
		f := AdminFiles(cfg.Dir)
		fmt.Fprintf(&b, "export BANKCTL_CACERT=%s\nexport BANKCTL_CERT=%s\nexport BANKCTL_KEY=%s\n", f.CA, f.Cert, f.Key)
	}
	return os.WriteFile(EnvPath(cfg.Dir), []byte(b.String()), 0o644)
}

// probeClient calls the cluster's nodes as its admin (plain HTTP for an
// insecure cluster), briefly.
func probeClient(dir string) *http.Client {
	c := &http.Client{Timeout: time.Second}
	if mat, err := tlsconf.Load(AdminFiles(dir)); err == nil {
		c.Transport = &http.Transport{TLSClientConfig: mat.Client(nil)}
	}
	return c
}
