// Package zktest starts real Apache ZooKeeper servers for tests: Debian's
// zookeeper package, run as `java ... QuorumPeerMain zoo.cfg`, one process
// per server, in a temporary directory, on free loopback ports. Servers are
// ready when they answer the `srvr` four-letter command; their output goes
// to t.Logf; they are stopped by PID when the test ends, even on failure.
//
// It exists because go-zookeeper's own test cluster helper is not
// importable; it follows the same approach.
package zktest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"sync"
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
	t       testing.TB
	Servers []*Server
}

// Server is one ZooKeeper process.
type Server struct {
	ID         int
	ClientPort int
	spec       zkserver.Server
	t          testing.TB

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start launches an ensemble of n servers (1 or 3, say) and waits until
// every server serves clients. It fails the test with a clear message when
// ZooKeeper is not installed.
func Start(t testing.TB, n int) *Ensemble {
	t.Helper()
	if err := zkserver.Installed(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ports := freePorts(t, 3*n)
	e := &Ensemble{t: t}
	specs := make([]zkserver.Server, n)
	for i := range specs {
		specs[i] = zkserver.Server{ID: i + 1, Dir: filepath.Join(dir, fmt.Sprint(i+1)),
			ClientPort: ports[3*i], PeerPort: ports[3*i+1], ElectionPort: ports[3*i+2]}
	}
	for _, spec := range specs {
		if err := zkserver.WriteConfig(spec, specs, TickTime); err != nil {
			t.Fatal(err)
		}
		e.Servers = append(e.Servers, &Server{ID: spec.ID, ClientPort: spec.ClientPort, spec: spec, t: t})
	}
	t.Cleanup(e.Kill)
	for _, s := range e.Servers {
		s.Start()
	}
	for _, s := range e.Servers {
		s.WaitReady()
	}
	return e
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

// Start launches the server process (again, after Stop or Kill).
func (s *Server) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	cmd := zkserver.Command(s.spec, 512)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("zktest: start server %d: %v", s.ID, err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go s.relay(cmd, out, s.done)
}

// relay copies the server's output to the test log and reaps the process.
// A server that exits by itself is marked stopped, so it can be started
// again.
func (s *Server) relay(cmd *exec.Cmd, out io.Reader, done chan struct{}) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		s.logf("zk%d: %s", s.ID, sc.Text())
	}
	cmd.Wait()
	s.mu.Lock()
	if s.cmd == cmd {
		s.cmd = nil
	}
	s.mu.Unlock()
	close(done)
}

// logf logs unless the test has finished (t.Logf panics after that).
func (s *Server) logf(format string, args ...any) {
	defer func() { recover() }()
	s.t.Logf(format, args...)
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

// WaitReady waits until the server answers `srvr` as a member of a working
// ensemble (leader, follower or standalone).
func (s *Server) WaitReady() {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if zkserver.Serving(s.Mode()) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("zktest: server %d not ready after 60s", s.ID)
}

// Mode asks the server for its role with `srvr`; "" when it does not
// answer.
func (s *Server) Mode() string { return zkserver.Mode(s.Addr()) }

// freePorts reserves n distinct free loopback ports. They are released
// before use, so a race with another process is possible but rare.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}
