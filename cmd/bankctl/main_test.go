package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zkbank/zkbank/certs"
	"github.com/zkbank/zkbank/cmd/internal/devcluster"
	"github.com/zkbank/zkbank/cmd/internal/tlsconf"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/seal"
)

// binaries builds bankctl and bankd once per test run.
func binaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"bankctl", "bankd"} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), "../"+name).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", name, err, out)
		}
	}
	return dir
}

type ctl struct {
	t         *testing.T
	bin, dir  string
	endpoints string
}

// logTails is the last lines of every bankd's log, for a failure.
func (c *ctl) logTails() string {
	logs, _ := filepath.Glob(filepath.Join(c.dir, "nodes", "*", "bankd.log"))
	var b strings.Builder
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		fmt.Fprintf(&b, "%s, last lines:\n%s\n", l, strings.Join(lines[max(0, len(lines)-25):], "\n"))
	}
	return b.String()
}

// run runs bankctl and returns stdout, stderr and the exit code.
func (c *ctl) run(stdin string, args ...string) (string, string, int) {
	c.t.Helper()
	cmd := exec.Command(filepath.Join(c.bin, "bankctl"), args...)
	cmd.Env = append(os.Environ(), "BANKCTL_ENDPOINTS="+c.endpoints, "XDG_STATE_HOME="+filepath.Join(c.dir, "state"))
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func (c *ctl) ok(args ...string) string {
	c.t.Helper()
	out, errs, code := c.run("", args...)
	if code != 0 {
		c.t.Fatalf("bankctl %v: exit %d\n%s%s", args, code, out, errs)
	}
	return out
}

// devUp starts a detached dev cluster on random free ports (retrying when
// a port is taken) and stops it when the test ends.
func devUp(t *testing.T, c *ctl, nodes, zks int) {
	for try := 0; ; try++ {
		base := 20000 + rand.IntN(9000)
		args := []string{"dev", "up", "--detach", "--dir", c.dir, "--nodes", fmt.Sprint(nodes), "--zk", fmt.Sprint(zks),
			"--zk-port", fmt.Sprint(base), "--api-port", fmt.Sprint(base + 3000), "--session-timeout", "2s"}
		out, errs, code := c.run("", args...)
		if code == 0 {
			t.Cleanup(func() { c.run("", "dev", "down", "--dir", c.dir) })
			var eps []string
			for i := range nodes {
				eps = append(eps, fmt.Sprintf("127.0.0.1:%d", base+3000+i))
			}
			c.endpoints = strings.Join(eps, ",")
			t.Logf("dev cluster up:\n%s", out)
			return
		}
		if !strings.Contains(errs, "in use") || try == 4 {
			t.Fatalf("dev up: exit %d\n%s%s\n%s", code, out, errs, readFile(filepath.Join(c.dir, "supervisor.log")))
		}
	}
}

// checkZooKeeperMode: bankctl zookeeper mode asks a server over TLS with
// a certificate of the cluster CA, says "not serving" for an address
// where none answers (exit 6), and wants the certificate flags.
func checkZooKeeperMode(t *testing.T, c *ctl) {
	var zk string
	for _, p := range c.pids() {
		if p.Kind == "zookeeper" {
			zk = p.Addr
		}
	}
	f := devcluster.AdminFiles(c.dir)
	tlsArgs := []string{"--cacert", f.CA, "--cert", f.Cert, "--key-file", f.Key}
	if out := c.ok(append([]string{"zookeeper", "mode", zk, "-o", "table"}, tlsArgs...)...); !strings.Contains(out, "standalone") {
		t.Fatalf("zookeeper mode %s:\n%s", zk, out)
	}
	out, _, code := c.run("", append([]string{"zookeeper", "mode", zk, "127.0.0.1:1", "-o", "table"}, tlsArgs...)...)
	if code != 6 || !strings.Contains(out, "not serving") {
		t.Fatalf("zookeeper mode with a dead address: exit %d\n%s", code, out)
	}
	if _, errs, code := c.run("", "zookeeper", "mode", zk); code != 2 || !strings.Contains(errs, "--cacert, --cert and --key-file") {
		t.Fatalf("zookeeper mode without certificates: exit %d\n%s", code, errs)
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// TestBankctlAgainstADevCluster starts a cluster with `bankctl dev up`,
// drives every user command through the real binaries, checks exit codes,
// lets the supervisor restart a killed bankd, audits a node's data dir
// against the live digest, and stops it all with `dev down`.
func TestBankctlAgainstADevCluster(t *testing.T) {
	c := &ctl{t: t, bin: binaries(t), dir: filepath.Join(t.TempDir(), "dev")}
	devUp(t, c, 2, 1)

	var ada wire.Account
	json.Unmarshal([]byte(c.ok("account", "create", "--name", "Ada", "--balance", "1000", "-o", "json")), &ada)
	if ada.Account != "0000000001" || ada.Balance != 1000 {
		t.Fatalf("created %+v", ada)
	}
	c.ok("account", "create", "--name", "Bob", "--account", "B-1")
	if out := c.ok("transfer", "0000000001", "B-1", "300", "-o", "table"); !strings.Contains(out, "700") || !strings.Contains(out, "ACCOUNT") {
		t.Fatalf("transfer table:\n%s", out)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"withdraw", "B-1", "301"}, 3, "insufficient_funds"},
		{[]string{"deposit", "B-1", "1.5"}, 2, "minor units"},
		{[]string{"transfer", "B-1"}, 2, "accepts 3 arg"},
		{[]string{"account", "get", "nobody"}, 3, "account_not_found"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"--endpoints", "127.0.0.1:1", "--timeout", "500ms", "account", "get", "B-1"}, 4, "unavailable"},
		{[]string{"--endpoints", "127.0.0.1:1,127.0.0.1:2", "--timeout", "30s", "deposit", "B-1", "1"}, 4, "every endpoint refused"},
		{[]string{"deposit", "B-1", "-5"}, 2, "no negative amounts"},
		{[]string{"deposit", "B-1", "99999999999999999999"}, 2, "too large"},
		{[]string{"account", "create", "--name", "   "}, 2, "empty"},
		{[]string{"account", "create", "--name", "\xff"}, 2, "not valid UTF-8"},
		{[]string{"account", "create", "--name", "Eve", "--account", "-"}, 2, "starts with -"},
		{[]string{"transfer", "B-1", "B-1", "5"}, 2, "two different accounts"},
	} {
		out, errs, code := c.run("", tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.want) {
			t.Errorf("bankctl %v: exit %d, want %d with %q\n%s%s", tc.args, code, tc.code, tc.want, out, errs)
		}
	}

	// A batch file, with one rejection: exit 3 and the line named.
	batch := filepath.Join(t.TempDir(), "cmds.jsonl")
	os.WriteFile(batch, []byte(`{"op":"deposit","account":"B-1","amount":5}
# a comment
{"op":"withdraw","account":"B-1","amount":100000}
{"op":"create_account","account":"C-1","name":"Cy","balance":7}
`), 0o644)
	out, _, code := c.run("", "batch", batch, "-o", "table")
	if code != 3 || !strings.Contains(out, "line 3: insufficient_funds") {
		t.Fatalf("batch: exit %d\n%s", code, out)
	}

	// A frozen account: shown so, every movement refused (exit 3), and
	// unfrozen it moves again.
	if out := c.ok("account", "freeze", "C-1", "-o", "table"); !strings.Contains(out, "frozen") {
		t.Fatalf("freeze:\n%s", out)
	}
	if out, errs, code := c.run("", "deposit", "C-1", "1"); code != 3 || !strings.Contains(out+errs, "account_frozen") {
		t.Fatalf("deposit to a frozen account: exit %d\n%s%s", code, out, errs)
	}
	c.ok("account", "unfreeze", "C-1")
	c.ok("deposit", "C-1", "1")

	checkHistoryAndEvents(t, c)

	// A hold reserves money (held, the balance unchanged); capturing part
	// of it moves that part; a second close is refused (exit 3).
	var held wire.HoldResult
	json.Unmarshal([]byte(c.ok("hold", "create", "0000000001", "B-1", "200", "--expires-in", "1h", "-o", "json")), &held)
	if held.Hold.ID == 0 || held.From == nil || held.From.Held != 200 || held.From.Balance != 700 {
		t.Fatalf("hold create: %+v", held)
	}
	id := fmt.Sprint(held.Hold.ID)
	if out := c.ok("hold", "capture", id, "50", "-o", "table"); !strings.Contains(out, "captured") || !strings.Contains(out, "650") {
		t.Fatalf("hold capture:\n%s", out)
	}
	if out, errs, code := c.run("", "hold", "void", id); code != 3 || !strings.Contains(out+errs, "hold_closed") {
		t.Fatalf("void of a captured hold: exit %d\n%s%s", code, out, errs)
	}
	if out := c.ok("hold", "list", "B-1", "-o", "table"); !strings.Contains(out, "captured") || !strings.Contains(out, "HOLD") {
		t.Fatalf("hold list:\n%s", out)
	}
	for _, args := range [][]string{{"hold", "capture", "x"}, {"hold", "create", "0000000001", "B-1", "5", "--expires-in", "2161h"}} {
		if out, errs, code := c.run("", args...); code != 2 {
			t.Errorf("bankctl %v: exit %d, want 2\n%s%s", args, code, out, errs)
		}
	}

	// The shell reads a pipe: the same commands, read-your-writes.
	out, errs, code := c.run("account rename B-1 'Bob Jr'\naccount get B-1\nexit\ndeposit B-1 1\n", "shell", "-o", "json")
	if code != 0 || strings.Count(out, `"Bob Jr"`) != 2 || strings.Contains(out, `"balance": 306`) {
		t.Fatalf("shell: exit %d\n%s%s", code, out, errs)
	}

	checkZooKeeperMode(t, c)
	checkSupervisorRestarts(t, c)
	checkAuditMatchesLiveDigest(t, c)
	checkBackup(t, c)
	checkCertificatesAgainstTheCluster(t, c)
	checkTokens(t, c)

	if out := c.ok("dev", "down", "--dir", c.dir); !strings.Contains(out, "stopped") {
		t.Fatalf("dev down: %s", out)
	}
	if _, err := os.Stat(devcluster.StatePath(c.dir)); !os.IsNotExist(err) {
		t.Fatalf("state file left after dev down: %v", err)
	}
}

func checkSupervisorRestarts(t *testing.T, c *ctl) {
	var st struct {
		Processes []devcluster.ProcStatus `json:"processes"`
	}
	json.Unmarshal([]byte(c.ok("dev", "status", "--dir", c.dir, "-o", "json")), &st)
	var victim devcluster.ProcStatus
	for _, p := range st.Processes {
		if !p.Alive || p.Role == "" {
			t.Fatalf("process not serving: %+v", p)
		}
		if p.Kind == "bankd" {
			victim = p
		}
	}
	syscall.Kill(victim.PID, syscall.SIGKILL)
	deadline := time.Now().Add(30 * time.Second)
	for {
		json.Unmarshal([]byte(c.ok("dev", "status", "--dir", c.dir, "-o", "json")), &st)
		for _, p := range st.Processes {
			if p.ID == victim.ID && p.Restarts == 1 && p.Alive && p.Role != "" && p.PID != victim.PID {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not restarted: %+v\n%s", victim.ID, st.Processes, readFile(filepath.Join(c.dir, "supervisor.log")))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkAuditMatchesLiveDigest replays a copy of a node's data dir and
// compares with that node's digest at the same index.
func checkAuditMatchesLiveDigest(t *testing.T, c *ctl) {
	mat, err := tlsconf.Load(devcluster.AdminFiles(c.dir))
	if err != nil {
		t.Fatal(err)
	}
	n1 := "https://" + strings.Split(c.endpoints, ",")[0]
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: mat.Client(nil)}}).Get(n1 + "/v1/digest?consistency=linearizable")
	if err != nil {
		t.Fatal(err)
	}
	var d wire.Digest
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || d.Index == 0 {
		t.Fatalf("digest: %+v %v", d, err)
	}
	resp.Body.Close()
	copyDir := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-r", filepath.Join(c.dir, "nodes", "n1", "data"), copyDir).CombinedOutput(); err != nil {
		t.Fatalf("copy: %v %s", err, out)
	}
	var rep struct {
		Index     uint64 `json:"index"`
		StateHash string `json:"state_hash"`
		Entries   uint64 `json:"entries"`
		Verified  uint64 `json:"verified"`
	}
	json.Unmarshal([]byte(c.ok("journal", "replay", "--data-dir", copyDir, "--to", fmt.Sprint(d.Index), "-o", "json")), &rep)
	if rep.Index != d.Index || rep.StateHash != d.StateHash || rep.Verified == 0 || rep.Verified != rep.Entries {
		t.Fatalf("replay of n1's data dir: %+v; live digest %+v", rep, d)
	}
	// Against another CA nothing verifies: exit 5, at the first entry.
	other := t.TempDir()
	if _, err := certs.NewCA(other, "someone else"); err != nil {
		t.Fatal(err)
	}
	devCerts := devcluster.CertsDir(c.dir)
	id, err := os.ReadFile(filepath.Join(devCerts, seal.ClusterIDFile))
	if err != nil {
		t.Fatal(err)
	}
	_, errs, code := c.run("", "journal", "replay", "--data-dir", copyDir, "--cacert", filepath.Join(other, certs.CAFile),
		"--data-keys", filepath.Join(devCerts, seal.DataKeysFile), "--cluster-id", strings.TrimSpace(string(id)))
	if code != 5 || !strings.Contains(errs, "entry 1:") || !strings.Contains(errs, "does not verify") {
		t.Fatalf("replay against another CA: exit %d, %s", code, errs)
	}
}

// checkBackup: bankctl backup keeps a file only once it verified, never
// replaces one, and writes no account name in the clear.
func checkBackup(t *testing.T, c *ctl) {
	dir := t.TempDir()
	file := filepath.Join(dir, "bank.zkbackup")
	var rep struct {
		Index     uint64 `json:"index"`
		StateHash string `json:"state_hash"`
		Accounts  uint64 `json:"accounts"`
		Bytes     int64  `json:"bytes"`
	}
	if err := json.Unmarshal([]byte(c.ok("backup", "--out", file, "-o", "json")), &rep); err != nil || rep.Index == 0 || rep.Accounts < 2 {
		t.Fatalf("backup: %+v %v", rep, err)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Size() != rep.Bytes || fi.Mode().Perm() != 0o600 || strings.Contains(readFile(file), "Ada") {
		t.Fatalf("backup file: %v %v (%d bytes said), or it holds a name in the clear", fi, err, rep.Bytes)
	}
	if _, errs, code := c.run("", "backup", "--out", file); code != 2 || !strings.Contains(errs, "exists") {
		t.Fatalf("backup over a file: exit %d, %s", code, errs)
	}
	wrongKeys := filepath.Join(dir, "other.keys")
	if err := os.WriteFile(wrongKeys, []byte("1 "+strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.zkbackup")
	if _, errs, code := c.run("", "backup", "--out", other, "--data-keys", wrongKeys); code != 5 || !strings.Contains(errs, "does not verify") {
		t.Fatalf("backup opened with the wrong key: exit %d, %s", code, errs)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 2 {
		t.Fatalf("after a backup that did not verify, the dir holds %v", left)
	}
}

// pids are the dev cluster's process ids and roles, by process id.
func (c *ctl) pids() map[string]devcluster.ProcStatus {
	var st struct {
		Processes []devcluster.ProcStatus `json:"processes"`
	}
	json.Unmarshal([]byte(c.ok("dev", "status", "--dir", c.dir, "-o", "json")), &st)
	out := map[string]devcluster.ProcStatus{}
	for _, p := range st.Processes {
		out[p.ID] = p
	}
	return out
}

// leader is the process of the node the cluster names as its leader.
// Exactly one: each node's own view of its role can lag for a moment
// after a failover, and a test that stopped every process that says
// "leader" could stop two and resume one.
func (c *ctl) leader() devcluster.ProcStatus {
	c.t.Helper()
	var st struct {
		Leader struct {
			ID string `json:"id"`
		} `json:"leader"`
	}
	out := c.eventuallyExit(0, "cluster", "status", "-o", "json")
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Leader.ID == "" {
		c.t.Fatalf("cluster status names no leader (%v):\n%s", err, out)
	}
	p, ok := c.pids()[st.Leader.ID]
	if !ok || p.PID == 0 {
		c.t.Fatalf("no process for the leader %s", st.Leader.ID)
	}
	return p
}

// balance reads an account's balance through the cluster.
func (c *ctl) balance(account string) uint64 {
	var a wire.Account
	json.Unmarshal([]byte(c.ok("account", "get", account, "--consistency", "linearizable", "-o", "json")), &a)
	return a.Balance
}

// eventuallyExit runs bankctl until it exits with code, or fails.
func (c *ctl) eventuallyExit(code int, args ...string) string {
	c.t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for {
		out, errs, got := c.run("", args...)
		if got == code {
			return out
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("bankctl %v: exit %d, want %d\n%s%s\n%s", args, got, code, out, errs, c.logTails())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestBankctlWhenThingsGoWrong: a hung node (SIGSTOP) does not stop the
// failover; a write to it alone says its outcome is unknown and which key
// to retry with, and that key learns the outcome without applying twice;
// cluster status says degraded or down, with its exit code, while a
// member or the leader is hung; a batch file run twice applies once.
func TestBankctlWhenThingsGoWrong(t *testing.T) {
	c := &ctl{t: t, bin: binaries(t), dir: filepath.Join(t.TempDir(), "dev")}
	devUp(t, c, 3, 1)
	c.ok("account", "create", "--name", "Ada", "--account", "A-1", "--balance", "100")
	leader := c.leader()
	procs := c.pids()
	eps := strings.Split(c.endpoints, ",")
	var hung devcluster.ProcStatus
	var hungEP, healthyEP string
	for i, id := range []string{"n1", "n2", "n3"} {
		if id != leader.ID && hung.ID == "" {
			hung, hungEP = procs[id], eps[i]
		} else if healthyEP == "" {
			healthyEP = eps[i]
		}
	}
	syscall.Kill(hung.PID, syscall.SIGSTOP)
	resumed := false
	resume := func() {
		if !resumed {
			syscall.Kill(hung.PID, syscall.SIGCONT)
			resumed = true
		}
	}
	t.Cleanup(resume)

	// The hung endpoint first: each try has its own deadline, so the
	// healthy one answers within the overall timeout.
	c.ok("--endpoints", hungEP+","+healthyEP, "--attempt-timeout", "2s", "--timeout", "15s", "deposit", "A-1", "1")
	// The hung endpoint alone: over TLS the handshake never completes, so
	// nothing was sent, and bankctl says unavailable, not unknown.
	_, errs, code := c.run("", "--endpoints", hungEP, "--attempt-timeout", "1s", "--timeout", "2s", "deposit", "A-1", "9")
	if code != 4 || strings.Contains(errs, "outcome unknown") {
		t.Fatalf("a write to a hung node it never reached: exit %d\n%s", code, errs)
	}
	out, _, code := c.run("", "cluster", "status", "-o", "table")
	if code != 6 || !strings.HasPrefix(out, "degraded") || !strings.Contains(out, hung.ID) || !strings.Contains(out, "idempotency keys: remembered for 24h0m0s of log time: every key first used at or after") {
		t.Fatalf("cluster status with %s hung: exit %d\n%s", hung.ID, code, out)
	}
	resume()
	c.eventuallyExit(0, "cluster", "status")

	// A follower takes the write and forwards it to a hung leader: the
	// follower answers within bankctl's deadline that the outcome is
	// unknown, and bankctl says so with the key; that key then learns the
	// outcome, and the deposit applies once.
	leader = c.leader()
	var followerEP string
	for i, id := range []string{"n1", "n2", "n3"} {
		if id != leader.ID && followerEP == "" {
			followerEP = eps[i]
		}
	}
	c.ok("--endpoints", followerEP, "deposit", "A-1", "1") // the follower's connection to the leader is up
	syscall.Kill(leader.PID, syscall.SIGSTOP)
	_, errs, code = c.run("", "--endpoints", followerEP, "--attempt-timeout", "1500ms", "--timeout", "1500ms", "deposit", "A-1", "5")
	syscall.Kill(leader.PID, syscall.SIGCONT)
	key := regexp.MustCompile(`--key (\S+)`).FindStringSubmatch(errs)
	if code != 4 || !strings.Contains(errs, "outcome unknown") || key == nil {
		t.Fatalf("a write forwarded to a hung leader: exit %d\n%s", code, errs)
	}
	c.eventuallyExit(0, "cluster", "status")
	c.ok("deposit", "A-1", "5", "--key", key[1])
	if got := c.balance("A-1"); got != 107 {
		t.Fatalf("A-1 holds %d after deposits of 1, 1 and the retried 5, want 107 (the 5 applied once)", got)
	}

	leader = c.leader()
	syscall.Kill(leader.PID, syscall.SIGSTOP)
	t.Cleanup(func() { syscall.Kill(leader.PID, syscall.SIGCONT) })
	out, _, code = c.run("", "cluster", "status", "-o", "table")
	if code == 0 || !strings.Contains(strings.SplitN(out, "\n", 2)[0], leader.ID) {
		t.Fatalf("cluster status with the leader %s hung: exit %d\n%s", leader.ID, code, out)
	}
	syscall.Kill(leader.PID, syscall.SIGCONT)
	c.eventuallyExit(0, "cluster", "status")

	checkBatchReruns(t, c)
}

// checkBatchReruns: a batch file run twice applies once (its lines' keys
// come from the file), --new-keys applies it again, and a file with bad
// lines is refused whole, by line number and code.
func checkBatchReruns(t *testing.T, c *ctl) {
	file := filepath.Join(t.TempDir(), "pay.jsonl")
	os.WriteFile(file, []byte("{\"op\":\"deposit\",\"account\":\"A-1\",\"amount\":10}\n# two more\n{\"op\":\"withdraw\",\"account\":\"A-1\",\"amount\":3}\n"), 0o644)
	before := c.balance("A-1")
	c.ok("batch", file)
	out := c.ok("batch", file, "-o", "table")
	if got := c.balance("A-1"); got != before+7 || !strings.Contains(out, "2 of them were replays") {
		t.Fatalf("a batch run twice: %d -> %d, want +7 once\n%s", before, got, out)
	}
	c.ok("batch", "--new-keys", file)
	if got := c.balance("A-1"); got != before+14 {
		t.Fatalf("with --new-keys: %d, want %d", got, before+14)
	}
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	os.WriteFile(bad, []byte(`{"op":"deposit","account":"A-1","amount":1}
{"op":"deposit","account":"A-1","amount":-5}
{"op":"deposit","account":"A-1","amount":1.5}
{"op":"frobnicate"}
{"op":"transfer","from":"A-1","to":"A-1","amount":1}
`), 0o644)
	_, errs, code := c.run("", "batch", bad)
	for _, want := range []string{"line 2: invalid_amount", "line 3: invalid_amount", "line 4: invalid_op", "line 5: same_account", "4 bad lines; nothing was sent"} {
		if code != 2 || !strings.Contains(errs, want) {
			t.Fatalf("a batch with bad lines: exit %d, want 2 with %q\n%s", code, want, errs)
		}
	}
	if got := c.balance("A-1"); got != before+14 {
		t.Fatalf("a refused batch applied something: %d", got)
	}
}

// TestBankctlCertificates makes a CA, node and client certificates, lists
// them, rolls the CA over and ends the rollover, all offline; bad input
// is a usage error and writes nothing.
func TestBankctlCertificates(t *testing.T) {
	c := &ctl{t: t, bin: binaries(t), dir: t.TempDir()}
	dir := filepath.Join(c.dir, "certs")
	c.ok("certs", "ca", "--dir", dir)
	c.ok("certs", "node", "--dir", dir, "--id", "n1", "--host", "127.0.0.1", "--host", "bank-1.internal")
	c.ok("certs", "client", "--dir", dir, "--name", "alice", "--role", "admin")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"certs", "ca", "--dir", dir}, 1, "exists"},
		{[]string{"certs", "node", "--dir", dir, "--id", "n2"}, 2, "--host is required"},
		{[]string{"certs", "node", "--dir", dir, "--id", "../x", "--host", "h"}, 2, "node id"},
		{[]string{"certs", "client", "--dir", dir, "--name", "bob", "--role", "root"}, 2, "role"},
		{[]string{"certs", "client", "--dir", dir, "--name", "bob"}, 2, "required flag"},
		{[]string{"certs", "node", "--dir", filepath.Join(c.dir, "none"), "--id", "n2", "--host", "h"}, 1, "ca.crt"},
	} {
		out, errs, code := c.run("", tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.want) {
			t.Errorf("bankctl %v: exit %d, want %d with %q\n%s%s", tc.args, code, tc.code, tc.want, out, errs)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "client-bob.crt")); err == nil {
		t.Error("a refused client certificate was written")
	}

	var rows []struct {
		File, What, Serial string
		Trusted            bool
	}
	json.Unmarshal([]byte(c.ok("certs", "list", "--dir", dir, "-o", "json")), &rows)
	kinds := map[string]bool{}
	for _, r := range rows {
		kinds[r.What] = r.Trusted
	}
	if len(rows) != 3 || !kinds["ca"] || !kinds["node n1"] || !kinds["client alice (admin)"] {
		t.Fatalf("certs list: %+v", rows)
	}

	c.ok("certs", "rollover", "--dir", dir, "--name", "CA 2")
	if out := c.ok("certs", "list", "--dir", dir, "-o", "table"); strings.Count(out, "NO:") != 0 || strings.Count(out, " ca ") != 2 {
		t.Fatalf("during a rollover every certificate is trusted and the bundle holds two CAs:\n%s", out)
	}
	c.ok("certs", "node", "--dir", dir, "--id", "n1", "--host", "127.0.0.1")
	c.ok("certs", "drop-old", "--dir", dir)
	out := c.ok("certs", "list", "--dir", dir, "-o", "table")
	if !regexp.MustCompile(`client-alice.crt .*NO: `).MatchString(out) || regexp.MustCompile(`node-n1.crt .*NO: `).MatchString(out) {
		t.Fatalf("after drop-old the old CA's client certificate is untrusted and the reissued node's trusted:\n%s", out)
	}
}

// checkCertificatesAgainstTheCluster: a teller's certificate made with
// bankctl certs reaches the API but not the admin routes; revoked by its
// file, it is refused; a live node is not removed.
func checkCertificatesAgainstTheCluster(t *testing.T, c *ctl) {
	dir := devcluster.CertsDir(c.dir)
	c.ok("certs", "client", "--dir", dir, "--name", "tess", "--role", "teller")
	crt, key := filepath.Join(dir, "client-tess.crt"), filepath.Join(dir, "client-tess.key")
	asTess := []string{"--cacert", filepath.Join(dir, "ca.crt"), "--cert", crt, "--key-file", key}
	c.ok(append(asTess, "account", "get", "B-1")...)
	if out, errs, code := c.run("", append(asTess, "certs", "revocations")...); code != 3 || !strings.Contains(out+errs, "forbidden") {
		t.Fatalf("a teller listing revocations: exit %d\n%s%s", code, out, errs)
	}
	if out := c.ok("certs", "revoke", crt, "-o", "table"); !strings.Contains(out, "revoked at index") {
		t.Fatalf("certs revoke: %s", out)
	}
	if out, errs, code := c.run("", append(asTess, "account", "get", "B-1")...); code != 3 || !strings.Contains(out+errs, "revoked") {
		t.Fatalf("a revoked teller: exit %d\n%s%s", code, out, errs)
	}
	if out := c.ok("certs", "revocations", "-o", "table"); !strings.Contains(out, strings.ToLower(certSerial(t, crt))) {
		t.Fatalf("certs revocations does not list tess:\n%s", out)
	}
	if out, errs, code := c.run("", "cluster", "remove-node", "n1"); code != 3 || !strings.Contains(out+errs, "member_live") {
		t.Fatalf("removing a live node: exit %d\n%s%s", code, out, errs)
	}
}

func certSerial(t *testing.T, path string) string {
	list, err := certs.ReadCerts(path)
	if err != nil || len(list) != 1 {
		t.Fatalf("%s: %v", path, err)
	}
	return certs.Serial(list[0])
}

// checkTokens: tokens made with bankctl token authenticate bankctl alone
// (no client certificate), with their role's rights; a revoked one is
// refused once every node applied it; the history names who sent what.
func checkTokens(t *testing.T, c *ctl) {
	var tess wire.Token
	json.Unmarshal([]byte(c.ok("token", "create", "--role", "teller", "--name", "tess", "-o", "json")), &tess)
	var ada wire.Token
	json.Unmarshal([]byte(c.ok("token", "create", "--role", "customer", "--accounts", "0000000001", "--name", "ada", "-o", "json")), &ada)
	if tess.ID == 0 || !strings.HasPrefix(tess.Token, "zkb_") || ada.ID == 0 {
		t.Fatalf("tokens %+v %+v", tess, ada)
	}
	ca := filepath.Join(devcluster.CertsDir(c.dir), "ca.crt")
	as := func(tok wire.Token, args ...string) (string, string, int) {
		return c.run("", append([]string{"--cacert", ca, "--token", tok.Token}, args...)...)
	}
	for _, tc := range []struct {
		tok  wire.Token
		args []string
		code int
		want string
	}{
		{tess, []string{"deposit", "B-1", "1"}, 0, ""},
		{tess, []string{"token", "list"}, 3, "forbidden"},
		{ada, []string{"withdraw", "0000000001", "1"}, 0, ""},
		{ada, []string{"deposit", "0000000001", "1"}, 3, "forbidden"},
		{ada, []string{"account", "get", "B-1"}, 3, "forbidden"},
		{wire.Token{Token: "zkb_short"}, []string{"account", "get", "B-1"}, 2, "not a zkbank token"},
	} {
		out, errs, code := as(tc.tok, tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.want) {
			t.Errorf("bankctl as %s %v: exit %d, want %d with %q\n%s%s", tc.tok.Name, tc.args, code, tc.code, tc.want, out, errs)
		}
	}
	// Four eyes: above the teller limit a deposit waits (exit 7), its
	// teller may not approve it, an admin does.
	c.ok("approvals", "limit", "teller", "100")
	if out, errs, code := as(tess, "deposit", "B-1", "500"); code != 7 || !strings.Contains(errs, "approvals approve") {
		t.Fatalf("a deposit above the teller limit: exit %d\n%s%s", code, out, errs)
	}
	var waiting wire.ApprovalList
	json.Unmarshal([]byte(c.ok("approvals", "list", "-o", "json")), &waiting)
	if len(waiting.Approvals) != 1 || waiting.Approvals[0].Amount != 500 {
		t.Fatalf("approvals list: %+v", waiting)
	}
	id := fmt.Sprint(waiting.Approvals[0].ID)
	if out, errs, code := as(tess, "approvals", "approve", id); code != 3 || !strings.Contains(out+errs, "own_approval") {
		t.Fatalf("its teller approves: exit %d\n%s%s", code, out, errs)
	}
	if out := c.ok("approvals", "approve", id, "-o", "table"); !strings.Contains(out, "approved") || !strings.Contains(out, "B-1") {
		t.Fatalf("approvals approve:\n%s", out)
	}
	c.ok("approvals", "limit", "teller", "0")
	if out, errs, code := c.run("", "token", "create", "--role", "customer"); code != 2 || !strings.Contains(errs, "--accounts") {
		t.Errorf("a customer token without accounts: exit %d\n%s%s", code, out, errs)
	}
	if out := c.ok("token", "revoke", fmt.Sprint(tess.ID), "-o", "table"); !strings.Contains(out, "every live node applied it") {
		t.Fatalf("token revoke: %s", out)
	}
	if out, errs, code := as(tess, "deposit", "B-1", "1"); code != 3 || !strings.Contains(out+errs, "unauthenticated") {
		t.Fatalf("a revoked token: exit %d\n%s%s", code, out, errs)
	}
	if out := c.ok("token", "list", "-o", "table"); !regexp.MustCompile(`tess\s+teller\s+\d+\s+\d+`).MatchString(out) {
		t.Fatalf("token list does not show tess revoked:\n%s", out)
	}
	copyDir := filepath.Join(t.TempDir(), "copy")
	c.ok("cluster", "status") // every member at one hash: n1 has tess's deposit
	if out, err := exec.Command("cp", "-r", filepath.Join(c.dir, "nodes", "n1", "data"), copyDir).CombinedOutput(); err != nil {
		t.Fatalf("copy: %v %s", err, out)
	}
	if out := c.ok("journal", "history", "B-1", "--data-dir", copyDir, "-o", "table"); !strings.Contains(out, "tess (token") {
		t.Fatalf("history does not name tess:\n%s", out)
	}
}

// checkHistoryAndEvents: B-1's statement from the cluster says where its
// money came from and what was refused; the change feed lists every
// command once, and goes on after its last cursor with nothing new.
func checkHistoryAndEvents(t *testing.T, c *ctl) {
	t.Helper()
	var st wire.Statement
	if err := json.Unmarshal([]byte(c.ok("account", "history", "B-1", "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Lines) < 3 || st.Lines[0].Op != "create_account" || st.Lines[1].Op != "transfer" || st.Lines[1].Direction != "in" ||
		st.Lines[1].Counterparty != "0000000001" || st.Lines[1].Balance != 300 || st.Lines[2].Code != "insufficient_funds" || st.Lines[2].Balance != 300 {
		t.Fatalf("B-1's statement: %+v", st)
	}
	if out := c.ok("account", "history", "B-1", "-o", "table"); !strings.Contains(out, "COUNTERPARTY") || !strings.Contains(out, "insufficient_funds") {
		t.Fatalf("B-1's statement as a table:\n%s", out)
	}
	out := c.ok("events", "--from", "0", "-o", "json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var last wire.Event
	for i, l := range lines {
		var ev wire.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Cursor == "" {
			t.Fatalf("event line %d: %q (%v)", i+1, l, err)
		}
		last = ev
	}
	if len(lines) < 6 || last.Account != "C-1" || last.Op != "deposit" {
		t.Fatalf("the feed has %d events, the last %+v", len(lines), last)
	}
	if out := c.ok("events", "--from", last.Cursor, "-o", "json"); strings.TrimSpace(out) != "" {
		t.Fatalf("events after the last one: %q", out)
	}
	if out := c.ok("events", "--from", "0", "--account", "B-1", "-o", "table"); !strings.Contains(out, "-> B-1 300 ok") {
		t.Fatalf("B-1's events as text:\n%s", out)
	}
	if out := c.ok("cluster", "status", "-o", "table"); !strings.Contains(out, "history: statements and the change feed from index 1 on") {
		t.Fatalf("cluster status does not say where the history starts:\n%s", out)
	}
	for _, bad := range [][]string{{"events", "--from", "x"}, {"account", "history", "B-1", "--after", "1.x"}, {"account", "history", "B-1", "--limit", "0"}} {
		if _, errs, code := c.run("", bad...); code != 2 {
			t.Errorf("bankctl %v: exit %d, want 2\n%s", bad, code, errs)
		}
	}
}
