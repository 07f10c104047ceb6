package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bankd.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigFileUnderEnvironmentUnderFlags(t *testing.T) {
	p := writeConfig(t, `
id = "file-id"
data-dir = "/from/file"
session-timeout = "9s"
zk = ["10.0.0.1:2281", "10.0.0.2:2281"]
insecure = true
inflight = 4
`)
	t.Setenv("BANKD_DATA_DIR", "/from/env")
	o, err := parseOptions([]string{"--config", p, "--inflight", "6"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.id != "file-id" || o.dataDir != "/from/env" || o.sessionTimeout != 9*time.Second || o.inflight != 6 ||
		o.zk != "10.0.0.1:2281,10.0.0.2:2281" || !o.insecure {
		t.Fatalf("options %+v: want id, timeout, zk and insecure from the file, data dir from the environment, inflight from the flag", o)
	}
	t.Setenv("BANKD_CONFIG", p) // the file may come from the environment too
	if o, err = parseOptions(nil, &bytes.Buffer{}); err != nil || o.id != "file-id" {
		t.Fatalf("BANKD_CONFIG: %+v %v", o, err)
	}
}

func TestConfigFileErrorsNameTheFileAndTheKey(t *testing.T) {
	for text, want := range map[string]string{
		"id = \"n1\"\ndata-dri = \"/x\"\n":                                             `unknown setting "data-dri"`,
		"id = \"n1\"\nsession-timeout = \"soon\"\n":                                    `session-timeout = "soon"`,
		"id = \"n1\"\ninflight = 1.5\n":                                                "inflight: float64 is not a setting's type",
		"id = \"n1\"\n[tls]\ncert = \"x\"\n":                                           `unknown setting "tls"`,
		"id = \"n1\"\ndata-dir = \n":                                                   "--config",
		"id = \"n1\"\ndata-dir = \"/d\"\ninsecure = true\nsession-timeout = \"90s\"\n": "--session-timeout 1m30s: use 1s to 60s",
	} {
		p := writeConfig(t, text)
		_, err := parseOptions([]string{"--config", p}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config %q: %v, want an error with %q", text, err, want)
		}
		if err != nil && !strings.Contains(err.Error(), p) && !strings.HasPrefix(err.Error(), "--session-timeout") {
			t.Errorf("config %q: the error %q does not name the file", text, err)
		}
	}
	if _, err := parseOptions([]string{"--config", "/nonexistent/bankd.toml"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "/nonexistent/bankd.toml") {
		t.Errorf("a missing file: %v", err)
	}
}

// TestDeployExampleConfigIsValid: the example an operator copies parses,
// validates, and says what docs/deployment.md says it does.
func TestDeployExampleConfigIsValid(t *testing.T) {
	o, err := parseOptions([]string{"--config", "../../deploy/bankd/n1.toml"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.id != "n1" || o.certsDir != "/etc/zkbank/certs" || len(o.servers()) != 3 || o.insecure {
		t.Fatalf("deploy/bankd/n1.toml gives %+v", o)
	}
}
