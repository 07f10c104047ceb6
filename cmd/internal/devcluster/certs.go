package devcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zkbank/zkbank/certs"
	"github.com/zkbank/zkbank/cmd/internal/tlsconf"
	"github.com/zkbank/zkbank/cmd/internal/wire"
)

// AdminName is the dev cluster's admin client certificate's principal.
const AdminName = "admin"

// CertsDir is where a dev cluster keeps its certificates (bankctl certs'
// layout).
func CertsDir(dir string) string { return filepath.Join(dir, "certs") }

// EnvPath is the file that points bankctl at the cluster.
func EnvPath(dir string) string { return filepath.Join(dir, "env.sh") }

// ensureCerts makes the cluster's CA, a node certificate for every node
// (valid for its host's address, 127.0.0.1 and localhost), an admin
// client certificate, and ZooKeeper's certificates and credentials,
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
			if _, err := ca.IssueNode(dir, id, cfg.sans(i)); err != nil {
				return fmt.Errorf("devcluster: %w", err)
			}
		}
	}
	if crt, _ := certs.ClientFiles(dir, AdminName); !exists(crt) {
		if _, err := ca.IssueClient(dir, AdminName, "admin"); err != nil {
			return fmt.Errorf("devcluster: %w", err)
		}
	}
	return ensureZooKeeperSecrets(cfg, ca)
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
// cluster, with the admin's credentials (so it is the owner's alone).
func writeEnv(cfg Config, insecure bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Points bankctl at the dev cluster in %s: source this file.\n", cfg.Dir)
	fmt.Fprintf(&b, "export BANKCTL_ENDPOINTS=%s\nexport BANKCTL_DEV_DIR=%s\n", strings.Join(cfg.URLs(), ","), cfg.Dir)
	if !insecure {
		f := AdminFiles(cfg.Dir)
		fmt.Fprintf(&b, "export BANKCTL_CACERT=%s\nexport BANKCTL_CERT=%s\nexport BANKCTL_KEY=%s\n", f.CA, f.Cert, f.Key)
		fmt.Fprintf(&b, "export BANKCTL_TOKEN=$(cat %s)\n", TokenPath(cfg.Dir))
	}
	return writePrivate(EnvPath(cfg.Dir), b.String())
}

func writePrivate(path, s string) error {
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		return err
	}
	return os.Chmod(path, 0o600) // WriteFile keeps an older file's mode
}

// TokenPath is the file holding the dev cluster's admin API token (0600).
func TokenPath(dir string) string { return filepath.Join(CertsDir(dir), "admin.token") }

// AdminToken is the dev cluster's admin token, "" when it has none.
func AdminToken(dir string) string {
	b, err := os.ReadFile(TokenPath(dir))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// ensureAdminToken gives the cluster an admin API token, unless the one in
// TokenPath works: created through the API as the admin's client
// certificate, the credential that bootstraps every other (there is no
// insecure window). A fresh cluster answers not_ready until its log
// switches to the body version that carries tokens, so it retries.
func ensureAdminToken(ctx context.Context, cfg Config) error {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: probeClient(cfg.Dir).Transport}
	url := cfg.URLs()[0]
	if tok := AdminToken(cfg.Dir); tok != "" {
		if status, err := send(ctx, hc, "GET", url+"/v1/accounts?limit=1", tok, "", nil); err == nil && status == http.StatusOK {
			return nil
		}
	}
	secret := wire.NewToken()
	hash := wire.TokenHashHex(secret)
	body, _ := json.Marshal(wire.TokenRequest{Name: "dev-admin", Role: "admin", SecretSHA256: hash})
	deadline := time.Now().Add(60 * time.Second)
	for {
		status, err := send(ctx, hc, "POST", url+"/v1/admin/tokens", "", "dev-admin-"+hash[:16], body) // one key per secret: retries replay
		switch {
		case err == nil && status == http.StatusCreated:
			return writePrivate(TokenPath(cfg.Dir), secret+"\n")
		case err == nil && status < 500:
			return fmt.Errorf("devcluster: creating the admin token: HTTP %d", status)
		case time.Now().After(deadline) || ctx.Err() != nil:
			return fmt.Errorf("devcluster: creating the admin token: HTTP %d, %v", status, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// send makes one request as the admin (its certificate, or token when
// given), with an idempotency key when given, and returns the status.
func send(ctx context.Context, hc *http.Client, method, url, token, key string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set(wire.HeaderIdempotencyKey, key)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
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
