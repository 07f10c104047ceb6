// Package netlab builds a lab of hosts on one Linux machine: each host is
// its own network namespace with its own address, joined by veth pairs to
// a bridge that lives in a namespace of the lab (never in the machine's
// own), so nothing a lab does can reach an address outside this machine.
// Partitions are nftables rules inside the hosts' namespaces (cut.go);
// slow and lossy links are a userspace TCP proxy that the lab puts in
// front of a host's traffic (slow.go), since this kernel has no tc netem.
//
// Everything a lab creates carries its run id and owner PID: namespaces
// are named zkbank-lab-<run>-<pid>-<host>, links have that as their alias,
// nft tables are named after it. A lab removes only its own (Close kills
// the processes of its namespaces by PID, then deletes the namespaces),
// and New first removes what crashed runs left, but only those whose
// owner is dead; two labs at once never see each other's hosts.
//
// It needs root, iproute2 and nftables (make test installs them).
package netlab

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// prefix begins every namespace name a lab creates.
const prefix = "zkbank-lab-"

// Subnet is the hosts' network, /24; host i (0-based) gets .11+i, so the
// first three are .11, .12 and .13 as in docs/deployment.md. It exists
// only on the lab's bridge.
const Subnet = "10.77.0"

// Host is one machine of the lab.
type Host struct {
	Name string // as given to New
	Addr string // its IPv4 address on the lab's bridge
	NS   string // its network namespace
	lab  *Lab
}

// Lab is a set of hosts on one bridge.
type Lab struct {
	Run   string // random id of this lab
	Owner int    // PID of the process that made it
	hub   string // the bridge's namespace
	hosts []*Host

	mu   sync.Mutex
	cmds []*exec.Cmd // every command made by Host.Command, for Close
}

// New checks that it may build a lab (root, ip, nft), removes what dead
// labs left, and creates one host per name.
func New(names ...string) (*Lab, error) {
	if err := Check(); err != nil {
		return nil, err
	}
	if len(names) == 0 || len(names) > 200 {
		return nil, fmt.Errorf("netlab: %d hosts: use 1 to 200", len(names))
	}
	if err := Sweep(); err != nil {
		return nil, err
	}
	id := make([]byte, 4)
	rand.Read(id)
	l := &Lab{Run: hex.EncodeToString(id), Owner: os.Getpid()}
	l.hub = l.nsName("hub")
	if err := l.build(names); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

// Check says why this process cannot build a lab, or nil.
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("netlab: the network lab needs root (network namespaces, veth, nftables); run the tests as root, as CI does")
	}
	// Root's tools live in sbin, which a non-login PATH may lack.
	if p := os.Getenv("PATH"); !strings.Contains(p, "/usr/sbin") {
		os.Setenv("PATH", p+":/usr/sbin:/sbin")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("netlab: %s not found: run make test, which installs iproute2 and nftables", tool)
		}
	}
	return nil
}

func (l *Lab) nsName(host string) string {
	return fmt.Sprintf("%s%s-%d-%s", prefix, l.Run, l.Owner, host)
}

// tag is what the lab's links carry as their alias, and its nft tables
// as their name.
func (l *Lab) tag() string { return fmt.Sprintf("zkbank_lab_%s_%d", l.Run, l.Owner) }

func (l *Lab) build(names []string) error {
	if err := run("ip", "netns", "add", l.hub); err != nil {
		return err
	}
	if err := l.ip(l.hub, "link", "add", "br0", "type", "bridge"); err != nil {
		return err
	}
	for _, args := range [][]string{{"link", "set", "br0", "alias", l.tag()}, {"link", "set", "br0", "up"}, {"link", "set", "lo", "up"}} {
		if err := l.ip(l.hub, args...); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for i, name := range names {
		if !validName.MatchString(name) || seen[name] || name == "hub" {
			return fmt.Errorf("netlab: host name %q: use distinct names of letters and digits, at most 12", name)
		}
		seen[name] = true
		h := &Host{Name: name, Addr: fmt.Sprintf("%s.%d", Subnet, 11+i), NS: l.nsName(name), lab: l}
		l.hosts = append(l.hosts, h)
		if err := l.addHost(h, i); err != nil {
			return fmt.Errorf("netlab: host %s: %w", name, err)
		}
	}
	return l.initTables()
}

var validName = regexp.MustCompile(`^[a-z][a-z0-9]{0,11}$`)

// addHost creates h's namespace and its veth pair, made directly in the
// two namespaces so that no link ever appears in the machine's own.
func (l *Lab) addHost(h *Host, i int) error {
	if err := run("ip", "netns", "add", h.NS); err != nil {
		return err
	}
	peer := fmt.Sprintf("v%d", i)
	steps := [][]string{
		{"link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", l.hub},
		{"link", "set", "eth0", "alias", l.tag()},
		{"addr", "add", h.Addr + "/24", "dev", "eth0"},
		{"link", "set", "eth0", "up"},
		{"link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := l.ip(h.NS, s...); err != nil {
			return err
		}
	}
	for _, s := range [][]string{{"link", "set", peer, "alias", l.tag()}, {"link", "set", peer, "master", "br0"}, {"link", "set", peer, "up"}} {
		if err := l.ip(l.hub, s...); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) ip(ns string, args ...string) error {
	return run("ip", append([]string{"-n", ns}, args...)...)
}

// Hosts are the lab's hosts, in the order New was given their names.
func (l *Lab) Hosts() []*Host { return l.hosts }

// Host is the host of that name, or nil.
func (l *Lab) Host(name string) *Host {
	for _, h := range l.hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Command is name run on h: inside its network namespace (ip netns exec
// execs it, so the process's PID is the command's own).
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
	h.lab.mu.Lock()
	h.lab.cmds = append(h.lab.cmds, cmd)
	h.lab.mu.Unlock()
	return cmd
}

// Wrap returns cmd run on h instead, with cmd's environment, directory
// and I/O.
func (h *Host) Wrap(cmd *exec.Cmd) *exec.Cmd {
	w := h.Command(cmd.Path, cmd.Args[1:]...)
	w.Env, w.Dir, w.Stdin, w.Stdout, w.Stderr, w.SysProcAttr = cmd.Env, cmd.Dir, cmd.Stdin, cmd.Stdout, cmd.Stderr, cmd.SysProcAttr
	return w
}

// Close kills every process in the lab's namespaces, by PID, then deletes
// the namespaces (their links, addresses and nft tables go with them).
// The commands this process started on the hosts are killed first, by
// their own handles: one started an instant before is not in its
// namespace yet, and ip netns pids would miss it. It is safe to call
// twice.
func (l *Lab) Close() error {
	l.mu.Lock()
	for _, cmd := range l.cmds {
		if cmd.Process != nil {
			cmd.Process.Kill() // a pidfd underneath: never another process that took the PID
		}
	}
	l.mu.Unlock()
	var errs []error
	for _, h := range l.hosts {
		errs = append(errs, removeNS(h.NS))
	}
	errs = append(errs, removeNS(l.hub))
	return errors.Join(errs...)
}

// removeNS kills what runs in ns and deletes it; a namespace already gone
// is no error.
func removeNS(ns string) error {
	if !exists(ns) {
		return nil
	}
	for try := 0; ; try++ {
		pids := nsPIDs(ns)
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if try == 200 {
			return fmt.Errorf("netlab: processes %v in %s survive SIGKILL", pids, ns)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := run("ip", "netns", "delete", ns); err != nil && exists(ns) {
		return err
	}
	return nil // or another lab's Sweep deleted it first
}

func exists(ns string) bool {
	_, err := os.Stat("/run/netns/" + ns)
	return err == nil
}

// nsPIDs are the processes whose network namespace is ns.
func nsPIDs(ns string) []int {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

var labNS = regexp.MustCompile(`^` + prefix + `([0-9a-f]+)-([0-9]+)-`)

// Sweep removes the namespaces of labs whose owner process is dead (a
// test that crashed, or was killed, before its Close). Those of a live
// owner, this one's included, are left alone.
func Sweep() error {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return fmt.Errorf("netlab: ip netns list: %w", err)
	}
	var errs []error
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := labNS.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		if pid, _ := strconv.Atoi(m[2]); !alive(pid) {
			errs = append(errs, removeNS(f[0]))
		}
	}
	return errors.Join(errs...)
}

func alive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) != syscall.ESRCH
}

// Namespaces lists the lab namespaces on this machine that belong to
// owner (every lab's when owner is 0).
func Namespaces(owner int) []string {
	out, _ := exec.Command("ip", "netns", "list").Output()
	var ns []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if m := labNS.FindStringSubmatch(f[0]); m != nil && (owner == 0 || m[2] == strconv.Itoa(owner)) {
			ns = append(ns, f[0])
		}
	}
	return ns
}

func run(name string, args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("netlab: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// spec is a lab as another process sees it (Spec, Attach).
type spec struct {
	Run   string     `json:"run"`
	Owner int        `json:"owner"`
	Hosts []hostSpec `json:"hosts"`
}

type hostSpec struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
	NS   string `json:"ns"`
}

// Spec describes the lab for Attach in another process (a test that runs
// part of itself on one of the hosts).
func (l *Lab) Spec() string {
	s := spec{Run: l.Run, Owner: l.Owner}
	for _, h := range l.hosts {
		s.Hosts = append(s.Hosts, hostSpec{h.Name, h.Addr, h.NS})
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// Attach is the lab that Spec described, to use (cut, heal, slow down,
// run commands) but not to own: its Close is the owner's.
func Attach(specJSON string) (*Lab, error) {
	var s spec
	if err := json.Unmarshal([]byte(specJSON), &s); err != nil {
		return nil, fmt.Errorf("netlab: lab spec: %w", err)
	}
	l := &Lab{Run: s.Run, Owner: s.Owner}
	l.hub = l.nsName("hub")
	for _, h := range s.Hosts {
		l.hosts = append(l.hosts, &Host{Name: h.Name, Addr: h.Addr, NS: h.NS, lab: l})
	}
	return l, nil
}
