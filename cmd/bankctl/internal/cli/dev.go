package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/zkbank/zkbank/cmd/internal/devcluster"
)

const defaultDevDir = "zkbank-dev"

// devDir is the dev cluster's directory for dev status and dev down: the
// --dir given, else $BANKCTL_DEV_DIR, else the one dev up last started
// (remembered in rememberedDevDir), else ./zkbank-dev.
func devDir(c *cobra.Command, flag string) string {
	if c.Flags().Changed("dir") {
		return flag
	}
	if d := os.Getenv("BANKCTL_DEV_DIR"); d != "" {
		return d
	}
	if b, err := os.ReadFile(rememberedDevDir()); err == nil {
		if d := strings.TrimSpace(string(b)); fileExists(devcluster.StatePath(d)) {
			return d
		}
	}
	return flag
}

// findDevDir is the dev cluster bankctl would talk to when told nothing:
// $BANKCTL_DEV_DIR, else the one dev up last started, else ./zkbank-dev,
// the first that runs; "" when none does.
func findDevDir() string {
	candidates := []string{os.Getenv("BANKCTL_DEV_DIR")}
	if b, err := os.ReadFile(rememberedDevDir()); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(b)))
	}
	for _, d := range append(candidates, defaultDevDir) {
		if d != "" && fileExists(devcluster.StatePath(d)) {
			return d
		}
	}
	return ""
}

// rememberedDevDir is where dev up notes the directory it started.
func rememberedDevDir() string {
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return filepath.Join(os.TempDir(), "zkbank-dev-dir")
		}
		base = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(base, "zkbank", "dev-dir")
}

// rememberDevDir notes dir for the next dev status and dev down; a
// failure to note it only means they need --dir.
func rememberDevDir(dir string) {
	p := rememberedDevDir()
	if os.MkdirAll(filepath.Dir(p), 0o755) == nil {
		os.WriteFile(p, []byte(dir+"\n"), 0o644)
	}
}

func (a *app) devCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "dev", Short: "Run a local cluster: ZooKeeper servers and bankd processes on this machine"}
	cmd.AddCommand(a.devUp(), a.devStatus(), a.devDown())
	return cmd
}

func (a *app) devUp() *cobra.Command {
	cfg := devcluster.Config{}
	var detach bool
	var bankdArgs string
	cmd := &cobra.Command{
		Use:     "up [--nodes 3] [--zk 3] [--dir DIR] [--detach]",
		Example: "  bankctl dev up                      # in the foreground, until Ctrl-C\n  bankctl dev up --detach --dir /tmp/dev\n  bankctl dev down                    # stops the one dev up last started",
		Short:   "Start ZooKeeper and bankd processes and keep them running",
		Long: `Start a local cluster under --dir: ZooKeeper servers from Debian's package
(client ports from --zk-port) and bankd processes (API ports from
--api-port). The command supervises them: a process that dies is started
again, and membership changes are logged. Ctrl-C (or bankctl dev down)
stops everything; the data stays in --dir for the next start.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if cfg.Bankd == "" {
				cfg.Bankd = findBankd()
			}
			if bankdArgs != "" {
				cfg.BankdArgs = strings.Fields(bankdArgs)
			}
			if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
				return err
			}
			abs, err := filepath.Abs(cfg.Dir)
			if err != nil {
				return err
			}
			cfg.Dir = abs
			rememberDevDir(abs)
			if detach {
				return a.devDetach(cfg)
			}
			return a.devForeground(cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Dir, "dir", defaultDevDir, "directory for data, logs and the state file")
	f.IntVar(&cfg.Nodes, "nodes", 3, "bankd processes")
	f.IntVar(&cfg.ZooKeepers, "zk", 3, "ZooKeeper servers (odd)")
	f.IntVar(&cfg.ZKPort, "zk-port", 2181, "first ZooKeeper client port (peers +1000, elections +2000)")
	f.IntVar(&cfg.APIPort, "api-port", 8081, "first bankd API port")
	f.IntVar(&cfg.ZKHeapMB, "zk-heap-mb", 512, "heap of each ZooKeeper JVM (at least 512)")
	f.DurationVar(&cfg.SessionTimeout, "session-timeout", 4*time.Second, "bankd's ZooKeeper session timeout")
	f.StringVar(&cfg.Bankd, "bankd", "", "bankd binary (default: next to bankctl, else on PATH)")
	f.StringVar(&bankdArgs, "bankd-args", "", "extra flags for every bankd, space-separated")
	f.BoolVar(&detach, "detach", false, "start in the background and return once the cluster serves")
	f.BoolVar(&cfg.Insecure, "insecure", false, "run bankd with --insecure: plain HTTP, no certificates (by default the cluster gets a CA and certificates in DIR/certs)")
	return cmd
}

// findBankd looks next to this executable first: make build puts both in
// bin/.
func findBankd() string {
	if self, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(self), "bankd"); fileExists(p) {
			return p
		}
	}
	if p, err := exec.LookPath("bankd"); err == nil {
		return p
	}
	return "bankd"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func (a *app) devForeground(cfg devcluster.Config) error {
	cfg.Logger = slog.New(slog.NewTextHandler(a.stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return devcluster.Up(ctx, cfg, func(st *devcluster.State) { printBanner(a.stdout, cfg, st, true) })
}

// devDetach starts `bankctl dev up` (without --detach) as a background
// session leader logging to <dir>/supervisor.log, and waits until the
// cluster is ready.
func (a *app) devDetach(cfg devcluster.Config) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := slices.DeleteFunc(slices.Clone(os.Args[1:]), func(s string) bool { return s == "--detach" || s == "--detach=true" })
	if !slices.Contains(args, "--bankd") {
		args = append(args, "--bankd", cfg.Bankd)
	}
	args = append(args, "--dir", cfg.Dir) // absolute, whatever the child's working dir
	logPath := filepath.Join(cfg.Dir, "supervisor.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	child := exec.Command(self, args...)
	child.Stdout, child.Stderr = logf, logf
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := child.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	for {
		if st, err := devcluster.ReadState(cfg.Dir); err == nil && st.Ready && st.Supervisor == child.Process.Pid {
			printBanner(a.stdout, cfg, st, false)
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the cluster did not start (%v); see %s:\n%s", err, logPath, tail(logPath, 15))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func tail(path string, lines int) string {
	b, _ := os.ReadFile(path)
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

func printBanner(w io.Writer, cfg devcluster.Config, st *devcluster.State, foreground bool) {
	var zks, nodes []string
	for _, p := range st.Procs {
		if p.Kind == "zookeeper" {
			zks = append(zks, p.Addr)
		} else {
			nodes = append(nodes, fmt.Sprintf("%s %s (pid %d)", p.ID, p.Addr, p.PID))
		}
	}
	ctl := "bankctl"
	self, err1 := os.Executable()
	wd, err2 := os.Getwd()
	if err1 == nil && err2 == nil {
		if rel, err := filepath.Rel(wd, self); err == nil && !strings.HasPrefix(rel, "..") {
			ctl = rel
		}
	}
	fmt.Fprintf(w, `
zkbank local cluster is up
  data dir:   %s
  zookeeper:  %s
  bankd:      %s
  logs:       %s/nodes/<id>/bankd.log, %s/zk/<n>/zookeeper.log

Point bankctl at it (endpoints and the admin's certificate; bankctl
finds this cluster by itself too):
  source %[1]s/env.sh

Try:
  %[6]s account create --name Ada --balance 10000
  %[6]s account create --name Bob
  %[6]s transfer 0000000001 0000000002 2500
  %[6]s cluster status
  %[6]s shell
`, st.Dir, strings.Join(zks, ","), strings.Join(nodes, "\n              "), st.Dir, st.Dir, ctl)
	if foreground {
		fmt.Fprintf(w, "\nCtrl-C stops everything (the data stays in %s).\n\n", st.Dir)
	} else {
		fmt.Fprintf(w, "\nStop it with: %s dev down --dir %s\n", ctl, st.Dir)
	}
}

func (a *app) devStatus() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use: "status [--dir DIR] [-o json]", Short: "Every process of the local cluster: PID, port, role", Args: cobra.NoArgs,
		Example: "  bankctl dev status\n  bankctl dev status --dir /tmp/dev -o json",
		RunE: func(c *cobra.Command, _ []string) error {
			st, procs, err := devcluster.Status(devDir(c, dir))
			if err != nil {
				return err
			}
			if done, err := a.showJSON(map[string]any{"dir": st.Dir, "supervisor_pid": st.Supervisor, "processes": procs}); done {
				return err
			}
			var rows [][]string
			for _, p := range procs {
				role := p.Role
				if role == "" {
					role = "-"
				}
				rows = append(rows, []string{p.ID, p.Kind, fmt.Sprint(p.PID), fmt.Sprint(p.Port),
					map[bool]string{true: "running", false: "DEAD"}[p.Alive], role, fmt.Sprint(p.Restarts)})
			}
			fmt.Fprintf(a.stdout, "supervisor pid %d, dir %s\n\n", st.Supervisor, st.Dir)
			table(a.stdout, []string{"PROCESS", "KIND", "PID", "PORT", "STATE", "ROLE", "RESTARTS"}, rows)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", defaultDevDir, devDirUsage)
	return cmd
}

const devDirUsage = "the cluster's directory (default: $BANKCTL_DEV_DIR, else the one dev up last started, else ./zkbank-dev)"

func (a *app) devDown() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use: "down [--dir DIR]", Short: "Stop the local cluster (the data stays)", Args: cobra.NoArgs,
		Example: "  bankctl dev down\n  bankctl dev down --dir /tmp/dev",
		RunE: func(c *cobra.Command, _ []string) error {
			d := devDir(c, dir)
			if err := devcluster.Down(d, 60*time.Second); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "stopped the cluster in %s (its data stays)\n", d)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", defaultDevDir, devDirUsage)
	return cmd
}
