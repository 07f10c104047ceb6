package guide

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// systemctlShim stands in for systemctl in a host's blocks: it hands the
// command to the test (units.serve) through files in $LAB_CTL and waits
// for its exit status. The lab's hosts have no systemd; the test runs the
// units' own ExecStart lines.
const systemctlShim = `systemctl() {
  echo "$*" > "$LAB_CTL/req.tmp" && mv "$LAB_CTL/req.tmp" "$LAB_CTL/req"
  while [ ! -e "$LAB_CTL/done" ]; do sleep 0.05; done
  local rc; rc=$(cat "$LAB_CTL/done"); rm -f "$LAB_CTL/done"; return "$rc"
}
`

// units runs the deploy/systemd units on the lab's hosts as systemd
// would run them.
type units struct {
	s       *site
	mu      sync.Mutex
	running map[string]*service // by "host/unit"
}

type service struct {
	mu       sync.Mutex
	pid      int  // of its current process
	stopping bool // asked to stop (or the test ends): no more restarts
	exited   chan struct{}
}

// stopped says the service is down for good from now on, and returns the
// process to signal.
func (svc *service) stopped() int {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	svc.stopping = true
	return svc.pid
}

// serve answers the systemctl calls of host i's block until stop; ctl is
// the directory of the shim's files.
func (u *units) serve(i int) (ctl string, stop func()) {
	ctl, err := os.MkdirTemp(u.s.dir, fmt.Sprintf("ctl-%d-", i+1))
	if err != nil {
		u.s.t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			req, err := os.ReadFile(filepath.Join(ctl, "req"))
			if err != nil {
				continue
			}
			os.Remove(filepath.Join(ctl, "req"))
			rc := "0"
			if err := u.systemctl(i, strings.Fields(string(req))); err != nil {
				u.s.t.Errorf("host %d: systemctl %s: %v", i+1, strings.TrimSpace(string(req)), err)
				rc = "1"
			}
			// Written whole, then renamed: the shim reads it the moment
			// the name appears.
			tmp := filepath.Join(ctl, "done.tmp")
			if err := os.WriteFile(tmp, []byte(rc), 0o644); err != nil {
				u.s.t.Error(err)
			}
			os.Rename(tmp, filepath.Join(ctl, "done"))
		}
	}()
	return ctl, func() { close(done); wg.Wait() }
}

// systemctl does what the guide asks of systemd: enable --now, start,
// stop, disable --now, restart; daemon-reload does nothing here.
func (u *units) systemctl(i int, args []string) error {
	if len(args) == 0 {
		return errors.New("no command")
	}
	unit := args[len(args)-1]
	switch strings.Join(args[:len(args)-1], " ") {
	case "enable --now", "start":
		return u.start(i, unit)
	case "disable --now", "stop":
		return u.stop(i, unit, syscall.SIGTERM)
	case "restart":
		if err := u.stop(i, unit, syscall.SIGTERM); err != nil {
			return err
		}
		return u.start(i, unit)
	}
	return fmt.Errorf("the lab does not do systemctl %s", strings.Join(args, " "))
}

// start runs unit's ExecStart on host i in the background as systemd
// would: its Environment, its StateDirectory and LogsDirectory made, its
// output appended to a log file, and started again RestartSec after it
// fails when it says Restart=on-failure (a bankd that finds no ZooKeeper
// quorum within its start timeout exits 1, and systemd starts it again).
// The lab's Close kills it.
func (u *units) start(i int, unit string) error {
	spec, err := u.readUnit(i, unit)
	if err != nil {
		return err
	}
	logPath := filepath.Join(u.s.dir, fmt.Sprintf("host-%d", i+1), unit+".log")
	cmd, err := u.launch(i, spec, logPath)
	if err != nil {
		return err
	}
	svc := &service{pid: cmd.Process.Pid, exited: make(chan struct{})}
	go u.supervise(i, unit, spec, logPath, svc, cmd)
	u.mu.Lock()
	u.running[fmt.Sprintf("%d/%s", i, unit)] = svc
	u.mu.Unlock()
	u.s.t.Cleanup(func() {
		svc.stopped() // before the lab kills what runs: no restart after the test
		if u.s.t.Failed() {
			b, _ := os.ReadFile(logPath)
			u.s.t.Logf("%s on host %d, last of its log:\n%s", unit, i+1, tail(string(b), 30))
		}
	})
	return nil
}

// unitSpec is what the lab takes from a unit file.
type unitSpec struct {
	execStart  string
	env        []string
	restart    bool // Restart=on-failure
	restartSec time.Duration
}

func (u *units) readUnit(i int, unit string) (unitSpec, error) {
	b, err := os.ReadFile(filepath.Join(u.s.home(i), "deploy", "systemd", unit+".service"))
	if err != nil {
		return unitSpec{}, err
	}
	spec := unitSpec{restartSec: 100 * time.Millisecond} // systemd's default
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "Environment":
			spec.env = append(spec.env, v)
		case "ExecStart":
			spec.execStart = v
		case "Restart":
			spec.restart = v == "on-failure"
		case "RestartSec":
			secs, err := strconv.Atoi(v)
			if err != nil {
				return unitSpec{}, fmt.Errorf("%s: RestartSec=%s: %w", unit, v, err)
			}
			spec.restartSec = time.Duration(secs) * time.Second
		case "StateDirectory":
			os.MkdirAll(filepath.Join(u.s.root(i), "/var/lib", v), 0o700)
		case "LogsDirectory":
			os.MkdirAll(filepath.Join(u.s.root(i), "/var/log", v), 0o755)
		}
	}
	return spec, nil
}

// launch starts the unit's process once.
func (u *units) launch(i int, spec unitSpec, logPath string) (*exec.Cmd, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := u.s.hosts[i].Command("sh", "-c", "exec "+spec.execStart)
	cmd.Env, cmd.Stdout, cmd.Stderr = append(os.Environ(), spec.env...), logf, logf
	return cmd, cmd.Start()
}

// supervise waits for the unit's process and starts it again after a
// failure, unless it was asked to stop; exited closes when it is down
// for good.
func (u *units) supervise(i int, unit string, spec unitSpec, logPath string, svc *service, cmd *exec.Cmd) {
	defer close(svc.exited)
	for {
		err := cmd.Wait()
		svc.mu.Lock()
		stopping := svc.stopping
		svc.mu.Unlock()
		if stopping || err == nil || !spec.restart {
			return
		}
		time.Sleep(spec.restartSec)
		svc.mu.Lock()
		if svc.stopping {
			svc.mu.Unlock()
			return
		}
		next, serr := u.launch(i, spec, logPath)
		if serr != nil {
			svc.mu.Unlock()
			u.s.t.Errorf("%s on host %d: restart after %v: %v", unit, i+1, err, serr)
			return
		}
		cmd, svc.pid = next, next.Process.Pid
		// Under the lock: the test's cleanup takes it (svc.stopped) before
		// the test ends, so nothing logs after that.
		u.s.t.Logf("%s on host %d failed (%v); started again, as Restart=on-failure says", unit, i+1, err)
		svc.mu.Unlock()
	}
}

// stop ends a unit on host i: SIGTERM as systemd sends, or SIGKILL for a
// host that dies; then it waits.
func (u *units) stop(i int, unit string, sig syscall.Signal) error {
	key := fmt.Sprintf("%d/%s", i, unit)
	u.mu.Lock()
	svc := u.running[key]
	delete(u.running, key)
	u.mu.Unlock()
	if svc == nil {
		return fmt.Errorf("%s is not running on host %d", unit, i+1)
	}
	syscall.Kill(svc.stopped(), sig)
	select {
	case <-svc.exited:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s on host %d did not stop within 30s of %v", unit, i+1, sig)
	}
}
