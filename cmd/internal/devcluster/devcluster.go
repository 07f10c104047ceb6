// Package devcluster runs a local zkbank cluster on one machine: ZooKeeper
// servers from Debian's package and bankd processes, under one directory,
// on loopback ports. A supervisor (the process that called Up) restarts any
// of them that dies, logs membership changes, and stops everything when
// its context ends. The state file <dir>/cluster.json tells `dev status`
// and `dev down` what runs where.
package devcluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/zkbank/zkbank/zkcoord/zkserver"
)

// Config describes the cluster.
type Config struct {
	Dir        string
	Nodes      int // bankd processes (default 3)
	ZooKeepers int // ZooKeeper servers (default 3)
	ZKPort     int // first client port (default 2181); peers use ZKPort+1000, elections ZKPort+2000
	APIPort    int // first bankd port (default 8081)
	ZKHeapMB   int // per ZooKeeper JVM (default 512)
	// ZKOptimize runs ZooKeeper's JVM with C2 (zkserver.Server.Optimize):
	// the bench does, for TLS's speed; C1 alone starts and idles on less
	// CPU, which tests and a laptop prefer.
	ZKOptimize     bool
	SessionTimeout time.Duration // bankd's ZooKeeper session timeout (default 4s)
	Bankd          string        // path of the bankd binary
	BankdArgs      []string      // extra flags for every bankd
	// Insecure runs bankd with --insecure (plain HTTP, no certificates);
	// by default the cluster gets a CA and certificates under <dir>/certs.
	Insecure bool
	// Hosts, when set, places ZooKeeper server i and bankd i (0-based) on
	// Hosts[i%len(Hosts)]: the address it listens on and is reached at,
	// and how a process is run there (a netlab host). By default all run
	// on this machine, on 127.0.0.1.
	Hosts []Host
	// NodeArgs[i], when set, are extra flags for bankd i alone (after
	// BankdArgs).
	NodeArgs [][]string
	Logger   *slog.Logger
}

// Host is where a process of the cluster runs.
type Host struct {
	Addr string
	// Wrap returns the command that runs cmd on the host; nil runs it
	// here.
	Wrap func(*exec.Cmd) *exec.Cmd
}

// host is where process i (0-based) runs.
func (c Config) host(i int) Host {
	if len(c.Hosts) == 0 {
		return Host{Addr: "127.0.0.1"}
	}
	return c.Hosts[i%len(c.Hosts)]
}

// on is cmd as process i runs it.
func (c Config) on(i int, cmd *exec.Cmd) *exec.Cmd {
	if h := c.host(i); h.Wrap != nil {
		return h.Wrap(cmd)
	}
	return cmd
}

// sans are the addresses process i's certificate must name.
func (c Config) sans(i int) []string {
	if a := c.host(i).Addr; a != "127.0.0.1" {
		return []string{a, "127.0.0.1", "localhost"}
	}
	return []string{"127.0.0.1", "localhost"}
}

func (c *Config) withDefaults() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Nodes, 3)
	def(&c.ZooKeepers, 3)
	def(&c.ZKPort, 2181)
	def(&c.APIPort, 8081)
	def(&c.ZKHeapMB, 512)
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 4 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.Nodes < 1 || c.Nodes > 9 || c.ZooKeepers < 1 || c.ZooKeepers > 9:
		return errors.New("devcluster: use 1 to 9 nodes and ZooKeeper servers")
	case c.ZooKeepers%2 == 0:
		return fmt.Errorf("devcluster: %d ZooKeeper servers: use an odd number (a quorum of an even ensemble tolerates no more failures)", c.ZooKeepers)
	case c.ZKHeapMB < 512:
		return fmt.Errorf("devcluster: ZooKeeper heap %d MB: use at least 512 (less has crashed under batched writes)", c.ZKHeapMB)
	case c.Dir == "":
		return errors.New("devcluster: no directory")
	}
	if _, err := os.Stat(c.Bankd); err != nil {
		return fmt.Errorf("devcluster: bankd binary %q: %w (run make build, or pass --bankd)", c.Bankd, err)
	}
	return zkserver.Installed()
}

// State is the content of cluster.json.
type State struct {
	Dir        string    `json:"dir"`
	Supervisor int       `json:"supervisor_pid"`
	Started    time.Time `json:"started"`
	Ready      bool      `json:"ready"`
	Insecure   bool      `json:"insecure,omitempty"` // plaintext ZooKeeper, plain HTTP
	Procs      []Proc    `json:"processes"`
}

// Proc is one process of the cluster.
type Proc struct {
	Kind     string `json:"kind"` // zookeeper or bankd
	ID       string `json:"id"`
	PID      int    `json:"pid"`
	Port     int    `json:"port"`
	Addr     string `json:"addr"`
	Log      string `json:"log"`
	Data     string `json:"data"`
	Restarts int    `json:"restarts"`
}

// StatePath is where the state file lives.
func StatePath(dir string) string { return filepath.Join(dir, "cluster.json") }

// ReadState reads the state file of a running (or crashed) cluster.
func ReadState(dir string) (*State, error) {
	data, err := os.ReadFile(StatePath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("devcluster: no cluster runs in %s (no cluster.json)", dir)
	}
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("devcluster: %s: %w", StatePath(dir), err)
	}
	return &st, nil
}

// stateFile serialises updates of cluster.json.
type stateFile struct {
	mu sync.Mutex
	st State
}

func (s *stateFile) update(fn func(*State)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.st)
	data, _ := json.MarshalIndent(s.st, "", "  ")
	tmp := StatePath(s.st.Dir) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, StatePath(s.st.Dir))
}

// checkPorts fails with a clear message when a port the cluster needs is
// taken. Hosts of their own (a lab's) start with every port free.
func checkPorts(cfg Config) error {
	if len(cfg.Hosts) > 0 {
		return nil
	}
	type use struct {
		port int
		what string
	}
	var uses []use
	for i := range cfg.ZooKeepers {
		uses = append(uses, use{cfg.ZKPort + i, fmt.Sprintf("ZooKeeper %d client port (--zk-port)", i+1)})
		if cfg.ZooKeepers > 1 {
			uses = append(uses, use{cfg.ZKPort + 1000 + i, fmt.Sprintf("ZooKeeper %d peer port", i+1)},
				use{cfg.ZKPort + 2000 + i, fmt.Sprintf("ZooKeeper %d election port", i+1)})
		}
	}
	for i := range cfg.Nodes {
		uses = append(uses, use{cfg.APIPort + i, fmt.Sprintf("bankd n%d API port (--api-port)", i+1)})
	}
	for _, u := range uses {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", u.port))
		if err != nil {
			return fmt.Errorf("devcluster: port %d, the %s, is in use: stop what uses it or pick other ports", u.port, u.what)
		}
		ln.Close()
	}
	return nil
}

func zkConnect(cfg Config) string {
	var s []string
	for i := range cfg.ZooKeepers {
		s = append(s, net.JoinHostPort(cfg.host(i).Addr, fmt.Sprint(cfg.ZKPort+i)))
	}
	return strings.Join(s, ",")
}

// tlsArgs are bankd's TLS flags.
func (c Config) tlsArgs() []string {
	if c.Insecure {
		return []string{"--insecure"}
	}
	return []string{"--certs-dir", CertsDir(c.Dir)}
}

func (c Config) scheme() string {
	if c.Insecure {
		return "http://"
	}
	return "https://"
}

// URLs are the bankd API base URLs of cfg.
func (c Config) URLs() []string {
	out := c.Endpoints()
	for i := range out {
		out[i] = c.scheme() + out[i]
	}
	return out
}

// Endpoints are the bankd API addresses of cfg.
func (c Config) Endpoints() []string {
	var s []string
	for i := range c.Nodes {
		s = append(s, net.JoinHostPort(c.host(i).Addr, fmt.Sprint(c.APIPort+i)))
	}
	return s
}

func removeState(dir string) error {
	if err := os.Remove(StatePath(dir)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// URLs are the bankd API base URLs of a running cluster, from its state.
func (st *State) URLs() []string {
	var out []string
	for _, p := range st.Procs {
		if p.Kind == "bankd" {
			out = append(out, p.Addr)
		}
	}
	return out
}
