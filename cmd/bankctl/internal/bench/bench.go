// Package bench measures a local cluster: ZooKeeper's own unbatched
// create rate as the baseline, then writes through the single-command and
// batch APIs, reads, failover, catch-up after a trim, and memory. It
// starts its own cluster (3 ZooKeeper + 3 bankd) with the dev supervisor,
// so every figure comes from the binaries users run, on this machine.
package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/zkbank/zkbank/cmd/internal/devcluster"
	"github.com/zkbank/zkbank/cmd/internal/tlsconf"
)

// Config of a run.
type Config struct {
	Dir      string        // cluster directory (a temporary one when empty)
	Bankd    string        // bankd binary
	ZKPort   int           // first ZooKeeper client port
	APIPort  int           // first bankd port
	Step     time.Duration // how long each throughput step runs (default 5s)
	Quick    bool          // skip the million-command catch-up and memory phase
	Only     []string      // run only these phases (see Phases); empty: all
	Args     []string      // extra bankd flags, after the bench's own
	ZKHeapMB int           // heap of each ZooKeeper JVM (default: devcluster's)
	Insecure bool          // run the cluster with --insecure (plain HTTP), to measure what TLS costs
	Progress io.Writer     // one line per step (nil: quiet)
}

// Result is one figure.
type Result struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	P50   float64 `json:"p50_ms,omitempty"`
	P99   float64 `json:"p99_ms,omitempty"`
	P999  float64 `json:"p999_ms,omitempty"`
	Note  string  `json:"note,omitempty"`
}

// run is one benchmark session against one cluster.
type run struct {
	cfg       Config
	http      *http.Client // as the cluster's admin
	quick     *http.Client // the same, with a short timeout
	tls       *tls.Config  // the load generator's (nil for an insecure cluster)
	token     string       // its bearer token ("" for an insecure cluster)
	dir       string
	endpoints []string
	dev       devcluster.Config // the cluster under test
	accounts  []string
	results   []Result
}

// Run starts a cluster, measures, stops it and returns the figures.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.Step <= 0 {
		cfg.Step = 5 * time.Second
	}
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "zkbank-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	dc := devcluster.Config{
		Dir: filepath.Join(dir, "cluster"), Nodes: 3, ZooKeepers: 3, ZKPort: cfg.ZKPort, APIPort: cfg.APIPort,
		Bankd: cfg.Bankd, SessionTimeout: 4 * time.Second, ZKHeapMB: cfg.ZKHeapMB, ZKOptimize: true, Insecure: cfg.Insecure,
		BankdArgs: append([]string{"--snapshot-every", "2000", "--log-retain", "100", "--segment-size", "500", "--trim-interval", "1s", "--log-level", "warn", "--rate-limit", "0"}, cfg.Args...),
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	r := &run{cfg: cfg, dir: dc.Dir}
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- devcluster.Up(cctx, dc, func(*devcluster.State) { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		return nil, err
	}
	r.endpoints = dc.Endpoints()
	if err := r.useCredentials(dc); err != nil {
		return nil, err
	}
	r.dev = dc
	err := r.all(ctx)
	stop()
	if uerr := <-done; err == nil {
		err = uerr
	}
	return r.results, err
}

// Phases names the phases a run can be limited to, in the order they run.
var Phases = []string{"baseline", "single", "batch", "reads", "failover", "catchup"}

// CheckPhases reports a name that is not one of Phases.
func CheckPhases(names []string) error {
	for _, n := range names {
		if !slices.Contains(Phases, n) {
			return fmt.Errorf("bench: unknown phase %q (phases: %s)", n, strings.Join(Phases, ", "))
		}
	}
	return nil
}

func (r *run) all(ctx context.Context) error {
	phases := map[string]func(context.Context) error{
		"baseline": r.baseline, "single": r.singleWrites, "batch": r.batchWrites,
		"reads": r.reads, "failover": r.failover, "catchup": r.catchUpAndMemory,
	}
	if err := r.preload(ctx); err != nil {
		return err
	}
	if err := r.warmUp(); err != nil {
		return err
	}
	for _, name := range Phases {
		if !r.wanted(name) {
			continue
		}
		if err := phases[name](ctx); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) wanted(phase string) bool {
	if len(r.cfg.Only) > 0 {
		return slices.Contains(r.cfg.Only, phase)
	}
	return phase != "catchup" || !r.cfg.Quick
}

// progress reports something worth knowing about a step.
func (r *run) progress(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, format+"\n", args...)
	}
}

func (r *run) add(res Result) {
	r.results = append(r.results, res)
	if r.cfg.Progress != nil {
		fmt.Fprintln(r.cfg.Progress, format(res))
	}
}

func format(res Result) string {
	s := fmt.Sprintf("%-52s %12.0f %s", res.Name, res.Value, res.Unit)
	if res.Unit != "s" && res.Unit != "MB" && res.P50 > 0 {
		s += fmt.Sprintf("   p50 %.1f ms  p99 %.1f ms  p999 %.1f ms", res.P50, res.P99, res.P999)
	}
	if res.Unit == "s" {
		s = fmt.Sprintf("%-52s %12.2f %s", res.Name, res.Value, res.Unit)
	}
	if res.Note != "" {
		s += "   (" + res.Note + ")"
	}
	return s
}

// Table formats results for people.
func Table(results []Result) string {
	var b strings.Builder
	for _, res := range results {
		b.WriteString(format(res) + "\n")
	}
	return b.String()
}

// percentiles of latencies, in milliseconds.
func percentiles(lat []time.Duration) (p50, p99, p999 float64) {
	if len(lat) == 0 {
		return 0, 0, 0
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	at := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
	}
	return at(0.50), at(0.99), at(0.999)
}

// useCredentials makes the run's clients speak to the cluster as its
// admin: over TLS, with the dev cluster's admin token (what a bank's
// clients send), unless the cluster is insecure.
func (r *run) useCredentials(dc devcluster.Config) error {
	pool := &http.Transport{MaxIdleConnsPerHost: 1024, MaxIdleConns: 4096}
	var rt http.RoundTripper = pool
	if !dc.Insecure {
		mat, err := tlsconf.Load(devcluster.AdminFiles(dc.Dir))
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		r.tls = mat.Client(nil)
		pool.TLSClientConfig = r.tls
		if r.token = devcluster.AdminToken(dc.Dir); r.token == "" {
			return errors.New("bench: the cluster has no admin token")
		}
		rt = bearer{pool, r.token}
	}
	r.http = &http.Client{Transport: rt, Timeout: 30 * time.Second}
	r.quick = &http.Client{Transport: rt, Timeout: time.Second}
	return nil
}

// bearer sends a token with every request.
type bearer struct {
	base  http.RoundTripper
	token string
}

func (b bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(req)
}

// url is the URL of path on node (host:port).
func (r *run) url(node, path string) string {
	if r.tls == nil {
		return "http://" + node + path
	}
	return "https://" + node + path
}
