package devcluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/zkbank/zkbank/zkcoord/zkserver"
)

// managed is one supervised process: started again whenever it exits,
// until stop.
type managed struct {
	idx     int // in State.Procs
	command func() *exec.Cmd
	sf      *stateFile
	cfg     *Config

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	stopping bool
}

// Up starts the cluster and supervises it until ctx ends, then stops every
// process (bankd first, so that it leaves ZooKeeper cleanly) and removes
// the state file. ready is called once everything serves.
func Up(ctx context.Context, cfg Config, ready func(*State)) error {
	if err := cfg.withDefaults(); err != nil {
		return err
	}
	if st, err := ReadState(cfg.Dir); err == nil && alive(st.Supervisor) {
		return fmt.Errorf("devcluster: a cluster already runs in %s (supervisor pid %d): bankctl dev down --dir %s", cfg.Dir, st.Supervisor, cfg.Dir)
	}
	if err := checkPorts(cfg); err != nil {
		return err
	}
	sf := &stateFile{st: State{Dir: cfg.Dir, Supervisor: os.Getpid(), Started: time.Now().UTC(), Insecure: cfg.Insecure}}
	if !cfg.Insecure {
		if err := ensureCerts(&cfg); err != nil {
			return err
		}
	}
	zks, nodes, err := plan(&cfg, sf)
	if err != nil {
		return err
	}
	defer os.Remove(StatePath(cfg.Dir))
	defer stopAll(zks)
	defer stopAll(nodes)
	if err := startAll(ctx, zks, 90*time.Second, zkServing(zkClientTLS(cfg.Dir, cfg.Insecure))); err != nil {
		return err
	}
	if err := lockOldNamespace(ctx, cfg); err != nil {
		return err
	}
	if err := startAll(ctx, nodes, 90*time.Second, bankdReady(probeClient(cfg.Dir))); err != nil {
		return err
	}
	if !cfg.Insecure {
		if err := ensureAdminToken(ctx, cfg); err != nil {
			return err
		}
	}
	if err := writeEnv(cfg, cfg.Insecure); err != nil {
		return fmt.Errorf("devcluster: %w", err)
	}
	sf.update(func(st *State) { st.Ready = true })
	if ready != nil {
		ready(&sf.st)
	}
	go watchMembers(ctx, cfg)
	<-ctx.Done()
	cfg.Logger.Info("stopping the cluster")
	return nil
}

// plan writes ZooKeeper's configs and lays out every process.
func plan(cfg *Config, sf *stateFile) (zks, nodes []*managed, err error) {
	var specs []zkserver.Server
	for i := range cfg.ZooKeepers {
		t, err := cfg.zkTLS(i + 1)
		if err != nil {
			return nil, nil, err
		}
		specs = append(specs, zkserver.Server{ID: i + 1, Host: cfg.host(i).Addr, Dir: filepath.Join(cfg.Dir, "zk", fmt.Sprint(i+1)), TLS: t, Optimize: cfg.ZKOptimize,
			ClientPort: cfg.ZKPort + i, PeerPort: cfg.ZKPort + 1000 + i, ElectionPort: cfg.ZKPort + 2000 + i})
	}
	for i, spec := range specs {
		if err := zkserver.WriteConfig(spec, specs, 500*time.Millisecond); err != nil {
			return nil, nil, err
		}
		sf.st.Procs = append(sf.st.Procs, Proc{Kind: "zookeeper", ID: fmt.Sprintf("zk%d", spec.ID), Port: spec.ClientPort,
			Addr: spec.Addr(), Log: filepath.Join(spec.Dir, "zookeeper.log"), Data: filepath.Join(spec.Dir, "data")})
		zks = append(zks, &managed{idx: len(sf.st.Procs) - 1, sf: sf, cfg: cfg, command: func() *exec.Cmd { return cfg.on(i, zkserver.Command(spec, cfg.ZKHeapMB)) }})
	}
	for i := range cfg.Nodes {
		id, port, addr := fmt.Sprintf("n%d", i+1), cfg.APIPort+i, cfg.host(i).Addr
		dir := filepath.Join(cfg.Dir, "nodes", id)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, err
		}
		args := append([]string{"--id", id, "--data-dir", filepath.Join(dir, "data"), "--zk", zkConnect(*cfg),
			"--listen", net.JoinHostPort(addr, fmt.Sprint(port)), "--session-timeout", cfg.SessionTimeout.String()}, cfg.tlsArgs()...)
		args = append(args, cfg.BankdArgs...)
		if i < len(cfg.NodeArgs) {
			args = append(args, cfg.NodeArgs[i]...)
		}
		sf.st.Procs = append(sf.st.Procs, Proc{Kind: "bankd", ID: id, Port: port, Addr: cfg.scheme() + net.JoinHostPort(addr, fmt.Sprint(port)),
			Log: filepath.Join(dir, "bankd.log"), Data: filepath.Join(dir, "data")})
		nodes = append(nodes, &managed{idx: len(sf.st.Procs) - 1, sf: sf, cfg: cfg, command: func() *exec.Cmd { return cfg.on(i, exec.Command(cfg.Bankd, args...)) }})
	}
	return zks, nodes, sf.update(func(*State) {})
}

func startAll(ctx context.Context, ms []*managed, within time.Duration, ready func(Proc) bool) error {
	for _, m := range ms {
		if err := m.start(); err != nil {
			return err
		}
		go m.supervise()
	}
	deadline := time.Now().Add(within)
	for _, m := range ms {
		p := m.proc()
		for !ready(p) {
			if time.Now().After(deadline) {
				return fmt.Errorf("devcluster: %s not ready after %v; see %s", p.ID, within, p.Log)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

func (m *managed) proc() Proc {
	m.sf.mu.Lock()
	defer m.sf.mu.Unlock()
	return m.sf.st.Procs[m.idx]
}

func (m *managed) start() error {
	p := m.proc()
	logf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("devcluster: %s log: %w", p.ID, err)
	}
	defer logf.Close()
	cmd := m.command()
	cmd.Stdout, cmd.Stderr = logf, logf
	// Die with the supervisor, and stay out of the terminal's Ctrl-C: the
	// supervisor stops everything in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopping {
		return errStopping
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("devcluster: start %s: %w", p.ID, err)
	}
	m.cmd, m.exited = cmd, make(chan struct{})
	m.sf.update(func(st *State) { st.Procs[m.idx].PID = cmd.Process.Pid })
	m.cfg.Logger.Info("started", "process", p.ID, "pid", cmd.Process.Pid, "log", p.Log)
	return nil
}

// supervise waits for the process and starts it again, with a growing
// pause when it keeps dying, until stop.
func (m *managed) supervise() {
	pause := time.Second
	for {
		m.mu.Lock()
		cmd, exited := m.cmd, m.exited
		m.mu.Unlock()
		started := time.Now()
		err := cmd.Wait()
		close(exited)
		m.mu.Lock()
		stopping := m.stopping
		m.mu.Unlock()
		if stopping {
			return
		}
		if time.Since(started) > time.Minute {
			pause = time.Second
		}
		p := m.proc()
		m.cfg.Logger.Warn("process died; restarting it", "process", p.ID, "pid", cmd.Process.Pid, "exit", exitText(err), "in", pause, "log", p.Log)
		time.Sleep(pause)
		pause = min(2*pause, 30*time.Second)
		m.sf.update(func(st *State) { st.Procs[m.idx].Restarts++ })
		if err := m.start(); errors.Is(err, errStopping) {
			return
		} else if err != nil {
			m.cfg.Logger.Error("restart failed; giving up on it", "process", p.ID, "err", err)
			return
		}
	}
}

var errStopping = errors.New("devcluster: stopping")

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// stop ends the process with SIGTERM (SIGKILL after 15s) and waits.
func (m *managed) stop() {
	m.mu.Lock()
	m.stopping = true
	cmd, exited := m.cmd, m.exited
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

func stopAll(ms []*managed) {
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() { defer wg.Done(); m.stop() }()
	}
	wg.Wait()
}

// zkServing asks a ZooKeeper server whether it serves (over TLS as the
// admin, when tc is set).
func zkServing(tc *tls.Config) func(Proc) bool {
	return func(p Proc) bool { return zkserver.Serving(zkserver.Mode(p.Addr, tc)) }
}

// bankdReady asks a bankd's /readyz with probe.
func bankdReady(probe *http.Client) func(Proc) bool {
	return func(p Proc) bool {
		resp, err := probe.Get(p.Addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
}

// alive reports whether pid is a running process.
func alive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}
