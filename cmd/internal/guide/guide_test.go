// Package guide runs docs/deployment.md in the network lab: every shell
// block the guide marks, on the hosts it names, with the lab's addresses
// and a directory per host standing in for its filesystem, and the
// systemd units' own ExecStart lines where the guide starts a service. So
// the guide cannot drift from the code.
package guide

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zkbank/zkbank/cmd/internal/netlab"
)

const guidePath = "../../../docs/deployment.md"

// block is one shell block of the guide and what its lab comment says.
type block struct {
	line   int
	spec   string // after "lab:"
	script string
}

var labComment = regexp.MustCompile(`^<!-- lab: (.*) -->$`)

// blocks reads the guide's sh blocks; each must follow a lab comment.
func blocks(t *testing.T) []block {
	f, err := os.Open(guidePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []block
	var spec string
	var cur *block
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur != nil && line == "```":
			out = append(out, *cur)
			cur, spec = nil, ""
		case cur != nil:
			cur.script += line + "\n"
		case line == "```sh":
			if spec == "" {
				t.Fatalf("%s:%d: a shell block without a <!-- lab: ... --> comment before it", guidePath, n)
			}
			cur = &block{line: n, spec: spec}
		case labComment.MatchString(line):
			spec = labComment.FindStringSubmatch(line)[1]
			if standalone(spec) { // a step of its own, no block
				out = append(out, block{line: n, spec: spec})
				spec = ""
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no blocks in the guide")
	}
	return out
}

// standalone: a lab comment that is a step of its own, with no block:
// the load starting or checked, a host dying or losing its data, a file
// copied from the workstation.
func standalone(spec string) bool {
	return spec == "load" || spec == "check load" || strings.Contains(spec, ", kill ") ||
		strings.Contains(spec, ", lose ") || strings.HasPrefix(spec, "copy ")
}

// site is the lab's stand-in for the guide's machines: hosts 1 to 6 and
// the workstation.
type site struct {
	t       *testing.T
	lab     *netlab.Lab
	dir     string // the run's folder
	bin     string // bankd and bankctl
	hosts   []*netlab.Host
	units   *units
	load    *load // from <!-- lab: load --> on
	checked bool  // <!-- lab: check load --> stopped and checked it
}

func TestDeploymentGuide(t *testing.T) {
	// The hosts' files are removed after the lab stops what runs on them
	// (cleanups run last first): a bankd still running when the test ends
	// writes into its data dir (its key store compacts) until then.
	dir := t.TempDir()
	lab, err := netlab.New("h1", "h2", "h3", "h4", "h5", "h6", "ws") // host K of the guide is hK
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
	})
	s := &site{t: t, lab: lab, dir: dir, hosts: lab.Hosts()[:6]}
	s.units = &units{s: s, running: map[string]*service{}}
	s.bin = filepath.Join(s.dir, "bin")
	for _, name := range []string{"bankd", "bankctl"} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(s.bin, name), "../../"+name).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", name, err, out)
		}
	}
	if err := os.MkdirAll(s.workstation(), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range s.hosts {
		s.prepareHost(i)
	}
	for _, b := range blocks(t) {
		s.do(b)
	}
	if s.load == nil {
		t.Fatal("the guide never starts the load (<!-- lab: load -->)")
	}
	if !s.checked {
		s.load.check()
	}
}

// do runs one block as its lab comment says: "load" (the bank workload
// starts, checked at "check load" or the end), "skip ...",
// "workstation[, within D]", "each host" (1 to 3, one after the other),
// "host K" or "hosts K L ..."; or, with no block, "<hosts>, kill UNIT"
// (the host dies), "<hosts>, lose UNIT" (it dies and its data dir is
// gone) or "copy FILE to host K" (from the workstation). A host's block
// runs its systemctl lines through units.
func (s *site) do(b block) {
	spec := b.spec
	switch {
	case spec == "load":
		s.load = s.startLoad()
		return
	case spec == "check load":
		s.load.check()
		s.checked = true
		return
	case strings.HasPrefix(spec, "copy "):
		s.copyFile(b)
		return
	case strings.HasPrefix(spec, "skip"):
		s.t.Logf("line %d: skipped: %s", b.line, spec)
		return
	case strings.HasPrefix(spec, "workstation"):
		s.run(s.lab.Host("ws"), s.workstation(), nil, b, within(spec))
		return
	}
	where, action, _ := strings.Cut(spec, ", ")
	on := s.hostsIn(b, where)
	verb, unit, _ := strings.Cut(action, " ")
	for _, i := range on {
		switch verb {
		case "":
			s.copyBundles(i)
			s.run(s.hosts[i], s.home(i), []string{fmt.Sprintf("N=%d", i+1)}, b, 2*time.Minute)
		case "kill": // the host dies
			if err := s.units.stop(i, unit, syscall.SIGKILL); err != nil {
				s.t.Fatal(err)
			}
		case "lose": // it dies, and its data dir with it
			dir, ok := dataDirs[unit]
			if !ok {
				s.t.Fatalf("line %d: no data dir known for %q", b.line, unit)
			}
			if err := s.units.stop(i, unit, syscall.SIGKILL); err != nil {
				s.t.Fatal(err)
			}
			if err := os.RemoveAll(filepath.Join(s.root(i), dir)); err != nil {
				s.t.Fatalf("line %d: lose %s: %v", b.line, unit, err)
			}
		default:
			s.t.Fatalf("line %d: unknown action %q", b.line, action)
		}
	}
}

// dataDirs are where the units keep their data (deploy/).
var dataDirs = map[string]string{"bankd": "/var/lib/zkbank", "zookeeper": "/var/lib/zookeeper/zkbank"}

// hostsIn reads "each host" (1 to 3), "host K" or "hosts K L ...".
func (s *site) hostsIn(b block, where string) []int {
	if where == "each host" {
		return []int{0, 1, 2}
	}
	var on []int
	fields := strings.Fields(where)
	if len(fields) < 2 || (fields[0] != "host" && fields[0] != "hosts") {
		s.t.Fatalf("line %d: unknown lab comment %q", b.line, b.spec)
	}
	for _, f := range fields[1:] {
		var k int
		if _, err := fmt.Sscanf(f, "%d", &k); err != nil || k < 1 || k > len(s.hosts) {
			s.t.Fatalf("line %d: no host in %q", b.line, b.spec)
		}
		on = append(on, k-1)
	}
	return on
}

// copyFile is "copy FILE to host K": the guide's scp of a workstation
// file to a host.
func (s *site) copyFile(b block) {
	var file string
	var k int
	if _, err := fmt.Sscanf(b.spec, "copy %s to host %d", &file, &k); err != nil || k < 1 || k > len(s.hosts) {
		s.t.Fatalf("line %d: %q: %v", b.line, b.spec, err)
	}
	data, err := os.ReadFile(filepath.Join(s.workstation(), file))
	if err != nil {
		s.t.Fatalf("line %d: %v", b.line, err)
	}
	if err := os.WriteFile(filepath.Join(s.home(k-1), filepath.Base(file)), data, 0o600); err != nil {
		s.t.Fatal(err)
	}
}

func (s *site) workstation() string { return filepath.Join(s.dir, "ws") }
func (s *site) root(i int) string   { return filepath.Join(s.dir, fmt.Sprintf("host-%d", i+1), "root") }
func (s *site) home(i int) string   { return filepath.Join(s.dir, fmt.Sprintf("host-%d", i+1), "home") }

// paths are the guide's absolute paths, each inside the host's root.
var paths = []string{"/etc/zkbank", "/etc/zookeeper", "/var/lib/zkbank", "/var/lib/zookeeper", "/var/log/zookeeper"}

// local is text as host i sees it: the lab's addresses, its root, bankd
// as built here.
func (s *site) local(i int, text string) string {
	text = strings.ReplaceAll(text, "10.0.0.", netlab.Subnet+".")
	text = strings.ReplaceAll(text, "/usr/local/bin/bankd", filepath.Join(s.bin, "bankd"))
	for _, p := range paths {
		text = strings.ReplaceAll(text, p, s.root(i)+p)
	}
	return text
}

// prepareHost gives host i its home with the repository's deploy/ in it
// (as the guide says to copy), as host i's paths say.
func (s *site) prepareHost(i int) {
	err := filepath.Walk("../../../deploy", func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || strings.HasSuffix(p, ".go") {
			return err
		}
		rel, _ := filepath.Rel("../../..", p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		dst := filepath.Join(s.home(i), rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, []byte(s.local(i, string(b))), 0o644)
	})
	if err != nil {
		s.t.Fatal(err)
	}
}

// copyBundles is the guide's scp of host-N.tgz to host N.
func (s *site) copyBundles(i int) {
	src := filepath.Join(s.workstation(), fmt.Sprintf("host-%d.tgz", i+1))
	if b, err := os.ReadFile(src); err == nil {
		if err := os.WriteFile(filepath.Join(s.home(i), filepath.Base(src)), b, 0o600); err != nil {
			s.t.Fatal(err)
		}
	}
}

// run runs a block on h in dir, failing the test on a non-zero exit or
// past the timeout. chown is a no-op and runuser runs its command as it
// is: the lab's hosts share this machine's users, and the lab runs as
// root.
func (s *site) run(h *netlab.Host, dir string, env []string, b block, timeout time.Duration) {
	i := s.index(h)
	script := "chown() { :; }\nrunuser() { while [ \"$1\" != -- ]; do shift; done; shift; \"$@\"; }\n" + b.script
	if i >= 0 {
		script = s.local(i, systemctlShim+script)
		ctl, stop := s.units.serve(i)
		defer stop()
		env = append(env, "LAB_CTL="+ctl)
	} else {
		script = strings.ReplaceAll(script, "10.0.0.", netlab.Subnet+".")
	}
	cmd := h.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "PATH="+s.bin+":"+os.Getenv("PATH")), env...)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-done:
		case <-time.After(timeout):
			if cmd.Process != nil {
				cmd.Process.Kill()
			}
		}
	}()
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("docs/deployment.md:%d on %s (%v, within %v):\n%s\n%s", b.line, h.Name, err, timeout, b.script, out)
	}
	s.t.Logf("docs/deployment.md:%d on %s, %v:\n%s", b.line, h.Name, time.Since(start).Round(10*time.Millisecond), out)
}

func (s *site) index(h *netlab.Host) int {
	for i, x := range s.hosts {
		if x == h {
			return i
		}
	}
	return -1
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// within is a block's timeout: "within 120s" in its comment, else a
// minute.
func within(spec string) time.Duration {
	if _, after, ok := strings.Cut(spec, "within "); ok {
		if d, err := time.ParseDuration(after); err == nil {
			return d
		}
	}
	return time.Minute
}
