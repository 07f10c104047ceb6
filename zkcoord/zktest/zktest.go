// Package zktest starts real Apache ZooKeeper servers for tests: Debian's
// zookeeper package, run as `java ... QuorumPeerMain zoo.cfg`, one process
// per server, in a temporary directory, on free loopback ports, locked
// down as a bank's must be: TLS only (a CA of the ensemble's own, client
// certificates required, the quorum over TLS too) and a super user for
// tests that play a ZooKeeper operator. Servers are
// ready when they answer the `srvr` four-letter command; their output goes
// to t.Logf; they are stopped by PID when the test ends, even on failure.
//
// It exists because go-zookeeper's own test cluster helper is not
// importable; it follows the same approach.
package zktest

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zkbank/zkbank/zkcoord/zkserver"
)

// Jar is the ZooKeeper jar from Debian's package.
const Jar = zkserver.Jar

// TickTime is the servers' tick. Sessions may last 2..20 ticks (1s..10s).
const TickTime = 500 * time.Millisecond

// Ensemble is a running set of ZooKeeper servers.
type Ensemble struct {
	Servers []*Server
	sec     *security
}

// Server is one ZooKeeper process.
type Server struct {
	ID         int
	ClientPort int
	spec       zkserver.Server
	logf       func(string, ...any)
	tls        *tls.Config // to ask the server its mode

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start launches a private ensemble of n servers (1 or 3, say) and waits
// until every server serves clients; it is killed when the test ends. It
// fails the test with a clear message when ZooKeeper is not installed.
// Tests that stop or kill servers need their own; the others can share
// one (Shared).
func Start(t testing.TB, n int) *Ensemble {
	t.Helper()
	e, err := launch(t.TempDir(), n, t.Logf)
	if e != nil {
		t.Cleanup(e.Kill)
	}
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// launch starts n servers under dir, logging their output with logf.
func launch(dir string, n int, logf func(string, ...any)) (*Ensemble, error) {
	if err := zkserver.Installed(); err != nil {
		return nil, err
	}
	ports, err := freePorts(3 * n)
	if err != nil {
		return nil, err
	}
	sec, err := newSecurity(filepath.Join(dir, "certs"))
	if err != nil {
		return nil, err
	}
	e := &Ensemble{sec: sec}
	specs := make([]zkserver.Server, n)
	for i := range specs {
		specs[i] = zkserver.Server{ID: i + 1, Dir: filepath.Join(dir, fmt.Sprint(i+1)), TLS: sec.serverTLS(),
			ClientPort: ports[3*i], PeerPort: ports[3*i+1], ElectionPort: ports[3*i+2]}
	}
	for _, spec := range specs {
		if err := zkserver.WriteConfig(spec, specs, TickTime); err != nil {
			return nil, err
		}
		e.Servers = append(e.Servers, &Server{ID: spec.ID, ClientPort: spec.ClientPort, spec: spec, logf: logf, tls: sec.client})
	}
	for _, s := range e.Servers {
		if err := s.start(); err != nil {
			return e, err
		}
	}
	for _, s := range e.Servers {
		if err := s.waitReady(); err != nil {
			return e, err
		}
	}
	return e, nil
}

// shared are the ensembles Shared started, by size.
var shared struct {
	sync.Mutex
	dir  string
	byN  map[int]*Ensemble
	logs *tail
}

// Shared is an ensemble of n servers shared by every test of the package
// that asks for one: started on first use, killed when Main returns.
// Tests share it by keeping to a ZooKeeper root of their own, and must not
// stop its servers. The package's TestMain must call Main.
func Shared(t testing.TB, n int) *Ensemble {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if shared.dir == "" {
		t.Fatal("zktest: Shared needs the package's TestMain to call zktest.Main")
	}
	if e, ok := shared.byN[n]; ok {
		return e
	}
	e, err := launch(filepath.Join(shared.dir, fmt.Sprint(n)), n, shared.logs.logf)
	if err != nil {
		if e != nil {
			e.Kill()
		}
		t.Fatalf("zktest: start a shared ensemble of %d: %v", n, err)
	}
	shared.byN[n] = e
	return e
}

// Main runs the package's tests (m.Run) with shared ensembles available,
// then kills them; when a test failed, it prints the servers' last lines.
// Use it as: func TestMain(m *testing.M) { os.Exit(zktest.Main(m)) }.
func Main(m *testing.M) int {
	dir, err := os.MkdirTemp("", "zktest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "zktest:", err)
		return 1
	}
	shared.Lock()
	shared.dir, shared.byN, shared.logs = dir, map[int]*Ensemble{}, &tail{max: 200}
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	for _, e := range shared.byN {
		e.Kill()
	}
	shared.Unlock()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "zktest: the shared ZooKeeper servers' last lines:\n%s", shared.logs)
	}
	os.RemoveAll(dir)
	return code
}

// roots are the roots Root handed out, by test, and their count.
var roots struct {
	byTest sync.Map // testing.TB -> string
	n      atomic.Uint64
}

// Root is a ZooKeeper root of the test's own: the same for every call in
// one test, and new for every test run in the process (so that -count=N
// runs on a shared ensemble never meet old data).
func Root(t testing.TB) string {
	if r, ok := roots.byTest.Load(t); ok {
		return r.(string)
	}
	name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	r, loaded := roots.byTest.LoadOrStore(t, fmt.Sprintf("/%s-%d", name, roots.n.Add(1)))
	if !loaded {
		t.Cleanup(func() { roots.byTest.Delete(t) })
	}
	return r.(string)
}

// tail keeps the last lines logged.
type tail struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (t *tail) logf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, fmt.Sprintf(format, args...))
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n") + "\n"
}

// Connect is the client connect string for every server.
func (e *Ensemble) Connect() []string {
	out := make([]string, len(e.Servers))
	for i, s := range e.Servers {
		out[i] = s.Addr()
	}
	return out
}

// Kill stops every server with SIGKILL and waits for them.
func (e *Ensemble) Kill() {
	for _, s := range e.Servers {
		s.Kill()
	}
}

// Addr is the server's client address.
func (s *Server) Addr() string { return s.spec.Addr() }

// Start launches the server process again, after Stop or Kill.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	cmd := zkserver.Command(s.spec, 512)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("zktest: start server %d: %w", s.ID, err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go s.relay(cmd, out, s.done)
	return nil
}

// relay copies the server's output to the test log and reaps the process.
// A server that exits by itself is marked stopped, so it can be started
// again.
func (s *Server) relay(cmd *exec.Cmd, out io.Reader, done chan struct{}) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		s.log("zk%d: %s", s.ID, sc.Text())
	}
	cmd.Wait()
	s.mu.Lock()
	if s.cmd == cmd {
		s.cmd = nil
	}
	s.mu.Unlock()
	close(done)
}

// log logs unless the test has finished (t.Logf panics after that).
func (s *Server) log(format string, args ...any) {
	defer func() { recover() }()
	s.logf(format, args...)
}

// PID is the server's process id, 0 when stopped.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Kill stops the server with SIGKILL and waits for it to exit.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

// Stop stops the server with SIGTERM and waits for it to exit.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// LoseData kills the server, deletes its snapshots and transaction logs
// (its disk died; myid stays, as a rebuilt server has it) and starts it
// again, empty.
func (s *Server) LoseData(t testing.TB) {
	t.Helper()
	s.Kill()
	if err := os.RemoveAll(filepath.Join(s.spec.Dir, "data", "version-2")); err != nil {
		t.Fatal(err)
	}
	s.Start(t)
	s.WaitReady(t)
}

// WaitReady waits until the server answers `srvr` as a member of a
// working ensemble (leader, follower or standalone), for up to 60 s.
func (s *Server) WaitReady(t testing.TB) {
	t.Helper()
	if err := s.waitReady(); err != nil {
		t.Fatal(err)
	}
}

func (s *Server) waitReady() error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if zkserver.Serving(s.Mode()) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("zktest: server %d not ready after 60s", s.ID)
}

// Mode asks the server for its role with `srvr`; "" when it does not
// answer.
func (s *Server) Mode() string { return zkserver.Mode(s.Addr(), s.tls) }

// freePorts reserves n distinct free loopback ports. They are released
// before use, so a race with another process is possible but rare.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
