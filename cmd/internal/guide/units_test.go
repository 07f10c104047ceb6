package guide

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	pid    int
	exited chan struct{}
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

// start runs unit's ExecStart on host i in the background: its
// Environment, its StateDirectory and LogsDirectory made, its output
// appended to a log file. The lab's Close kills it.
func (u *units) start(i int, unit string) error {
	b, err := os.ReadFile(filepath.Join(u.s.home(i), "deploy", "systemd", unit+".service"))
	if err != nil {
		return err
	}
	var env []string
	var execStart string
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "Environment":
			env = append(env, v)
		case "ExecStart":
			execStart = v
		case "StateDirectory":
			os.MkdirAll(filepath.Join(u.s.root(i), "/var/lib", v), 0o700)
		case "LogsDirectory":
			os.MkdirAll(filepath.Join(u.s.root(i), "/var/log", v), 0o755)
		}
	}
	logPath := filepath.Join(u.s.dir, fmt.Sprintf("host-%d", i+1), unit+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := u.s.hosts[i].Command("sh", "-c", "exec "+execStart)
	cmd.Env, cmd.Stdout, cmd.Stderr = append(os.Environ(), env...), logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	svc := &service{pid: cmd.Process.Pid, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(svc.exited) }()
	u.mu.Lock()
	u.running[fmt.Sprintf("%d/%s", i, unit)] = svc
	u.mu.Unlock()
	u.s.t.Cleanup(func() {
		if u.s.t.Failed() {
			b, _ := os.ReadFile(logPath)
			u.s.t.Logf("%s on host %d, last of its log:\n%s", unit, i+1, tail(string(b), 30))
		}
	})
	return nil
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
	syscall.Kill(svc.pid, sig)
	select {
	case <-svc.exited:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s on host %d did not stop within 30s of %v", unit, i+1, sig)
	}
}
