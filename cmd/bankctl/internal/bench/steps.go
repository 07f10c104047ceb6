package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkbank/zkbank/cmd/internal/devcluster"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/zkcoord"
)

func (r *run) post(node, path string, body any, out any) (int, error) {
	data, _ := json.Marshal(body)
	resp, err := r.http.Post(r.url(node, path), "application/json", bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode < 300 {
		return resp.StatusCode, json.NewDecoder(resp.Body).Decode(out)
	}
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func (r *run) get(node, path string) (int, error) {
	resp, err := r.http.Get(r.url(node, path))
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

const preloadAccounts = 10_000

// preload opens the accounts the write steps move money between.
func (r *run) preload(ctx context.Context) error {
	for start := 0; start < preloadAccounts; start += 1000 {
		var b wire.Batch
		for i := start; i < start+1000; i++ {
			acct := fmt.Sprintf("B-%06d", i)
			r.accounts = append(r.accounts, acct)
			b.Commands = append(b.Commands, wire.Command{Op: "create_account", Key: "pre-" + acct, Account: acct, Name: "bench", Balance: 1 << 40})
		}
		if code, err := r.post(r.endpoints[0], "/v1/batch", b, nil); err != nil || code != 200 {
			return fmt.Errorf("bench: preload: %d %v", code, err)
		}
	}
	return nil
}

// baseline is ZooKeeper's own rate for unbatched sequential creates of
// the size of one single-transfer log entry, on the same ensemble.
func (r *run) baseline(ctx context.Context) error {
	zc, err := devcluster.ZooKeeper(r.dev, "/bench-baseline")
	if err != nil {
		return fmt.Errorf("bench: baseline: %w", err)
	}
	s, err := zkcoord.Connect(ctx, zc)
	if err != nil {
		return fmt.Errorf("bench: baseline: %w", err)
	}
	defer s.Close()
	conn, parent := s.Conn, s.Path("creates")
	if _, err := conn.Create(parent, nil, 0, s.ACL()); err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return fmt.Errorf("bench: baseline: %w", err)
	}
	payload := bytes.Repeat([]byte("x"), 171) // one transfer, as a log entry
	for _, c := range []int{1, 64} {
		var n atomic.Int64
		var lats latencies
		err := forDuration(r.cfg.Step, c, func(int) error {
			started := time.Now()
			_, err := conn.Create(parent+"/n-", payload, zk.FlagSequence, s.ACL())
			lats.add(time.Since(started))
			n.Add(1)
			return err
		})
		if err != nil {
			return fmt.Errorf("bench: baseline: %w", err)
		}
		p50, p99, p999 := percentiles(lats.all())
		r.add(Result{Name: fmt.Sprintf("baseline: unbatched znode creates, concurrency %d", c), Value: float64(n.Load()) / r.cfg.Step.Seconds(),
			Unit: "creates/s", P50: p50, P99: p99, P999: p999})
	}
	return nil
}

// singleWrites: one transfer per request, spread over every node (so
// followers forward), at several concurrencies; then an open-loop run at
// half the best rate for its latency.
func (r *run) singleWrites(ctx context.Context) error {
	best := 0.0
	for _, c := range []int{1, 16, 64, 256} {
		rate, lats, err := r.transfers(c, 0)
		if err != nil {
			return err
		}
		best = max(best, rate)
		p50, p99, p999 := percentiles(lats)
		r.add(Result{Name: fmt.Sprintf("single-command transfers, %d clients", c), Value: rate, Unit: "transfers/s", P50: p50, P99: p99, P999: p999})
	}
	rate, lats, err := r.transfers(256, best/2)
	if err != nil {
		return err
	}
	p50, p99, p999 := percentiles(lats)
	r.add(Result{Name: "single-command transfers at half the best rate", Value: rate, Unit: "transfers/s", P50: p50, P99: p99, P999: p999,
		Note: fmt.Sprintf("offered %.0f/s", best/2)})
	return nil
}

// transfers runs c clients for one step; with rate > 0 they take their
// turns from a schedule (an open loop) instead of sending back to back,
// and each latency is measured from when its request was due, not from
// when a client got to it: a stalled server then shows in the figures
// instead of silently slowing the load (coordinated omission; wrk2).
func (r *run) transfers(c int, rate float64) (float64, []time.Duration, error) {
	return r.transfersFor(r.cfg.Step, c, rate)
}

// warmUpFor is how long the cluster takes load before the first
// measurement: ZooKeeper's JVM compiles its TLS paths with C2 in the
// first seconds under load (AES-GCM's intrinsics are C2's), and a
// cluster in service for hours is past that.
const warmUpFor = 15 * time.Second

// warmUp sends transfers at 64 clients for warmUpFor and keeps no figure.
func (r *run) warmUp() error {
	rate, _, err := r.transfersFor(warmUpFor, 64, 0)
	if err != nil {
		return fmt.Errorf("bench: warm-up: %w", err)
	}
	r.progress("warmed up for %v (%.0f transfers/s, not counted)", warmUpFor, rate)
	return nil
}

// transfersFor is transfers for d.
func (r *run) transfersFor(d time.Duration, c int, rate float64) (float64, []time.Duration, error) {
	var lats latencies
	var n, failed atomic.Int64
	cs := r.conns(c, r.endpoints)
	defer closeAll(cs)
	var sched *schedule // after the dials: its turns fall due from its start
	if rate > 0 {
		sched = newSchedule(rate)
		defer sched.stop()
	}
	err := forDuration(d, c, func(w int) error {
		started := time.Now()
		if sched != nil {
			started = sched.next()
		}
		from, to := r.pair()
		body, _ := json.Marshal(wire.Transfer{From: from, To: to, Amount: 1})
		code, err := cs[w].do("POST", "/v1/transfers", body)
		if err != nil || code != 200 {
			failed.Add(1)
			return nil
		}
		lats.add(time.Since(started))
		n.Add(1)
		return nil
	})
	if f := failed.Load(); f > 0 {
		return 0, nil, fmt.Errorf("bench: %d transfers failed at %d clients", f, c)
	}
	if sched != nil && sched.missed.Load() > 0 {
		r.progress("  %d requests were due and never sent: %.0f/s is over capacity", sched.missed.Load(), rate)
	}
	return float64(n.Load()) / d.Seconds(), lats.all(), err
}

// schedule hands out the times at which requests are due, rate per
// second from its start; a client takes the next one and sends at once
// (or waits for it). Turns wait in a queue of up to a second of them;
// any beyond that are counted as missed.
type schedule struct {
	due    chan time.Time
	missed atomic.Int64
	done   chan struct{}
}

func newSchedule(rate float64) *schedule {
	s := &schedule{due: make(chan time.Time, int(rate)+1), done: make(chan struct{})}
	go s.run(time.Now(), rate)
	return s
}

// run releases, every millisecond, the turns that fell due.
func (s *schedule) run(started time.Time, rate float64) {
	issued := 0
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-s.done:
			return
		}
		for due := int(time.Since(started).Seconds() * rate); issued < due; issued++ {
			select {
			case s.due <- started.Add(time.Duration(float64(issued) / rate * float64(time.Second))):
			default:
				s.missed.Add(1)
			}
		}
	}
}

// next waits for the next turn and returns when it was due.
func (s *schedule) next() time.Time { return <-s.due }

func (s *schedule) stop() { close(s.done) }

// pair picks two different preloaded accounts at random.
func (r *run) pair() (string, string) {
	from, to := rand.IntN(len(r.accounts)), rand.IntN(len(r.accounts)-1)
	if to >= from {
		to++
	}
	return r.accounts[from], r.accounts[to]
}

// batchBodies encodes a few batches of size random transfers ahead of the
// step, so that the load generator spends its CPU on requests, not JSON.
// Sending one again is a new batch: without an Idempotency-Key each
// request gets fresh keys.
func (r *run) batchBodies(size int) ([][]byte, error) {
	bodies := make([][]byte, 16)
	for i := range bodies {
		b := wire.Batch{Commands: make([]wire.Command, size)}
		for j := range b.Commands {
			from, to := r.pair()
			b.Commands[j] = wire.Command{Op: "transfer", Account: from, To: to, Amount: 1}
		}
		var err error
		if bodies[i], err = json.Marshal(b); err != nil {
			return nil, fmt.Errorf("bench: encode batch: %w", err)
		}
	}
	return bodies, nil
}

// batchWrites: transfers through the batch API, 8 clients over all nodes.
func (r *run) batchWrites(ctx context.Context) error {
	for _, size := range []int{100, 1000} {
		var cmds atomic.Int64
		var lats latencies
		bodies, err := r.batchBodies(size)
		if err != nil {
			return err
		}
		cs := r.conns(8, r.endpoints)
		err = forDuration(r.cfg.Step, 8, func(w int) error {
			started := time.Now()
			code, err := cs[w].do("POST", "/v1/batch", bodies[rand.IntN(len(bodies))])
			if err != nil || code != 200 {
				return fmt.Errorf("batch: %d %v", code, err)
			}
			lats.add(time.Since(started))
			cmds.Add(int64(size))
			return nil
		})
		closeAll(cs)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		p50, p99, p999 := percentiles(lats.all())
		r.add(Result{Name: fmt.Sprintf("batch API transfers, batches of %d, 8 clients", size), Value: float64(cmds.Load()) / r.cfg.Step.Seconds(),
			Unit: "transfers/s", P50: p50, P99: p99, P999: p999, Note: "latency per batch"})
	}
	return nil
}

// reads: local and linearizable single-account reads per node.
func (r *run) reads(ctx context.Context) error {
	for _, consistency := range []string{"local", "linearizable"} {
		for i, node := range r.endpoints {
			var n atomic.Int64
			var lats latencies
			cs := r.conns(32, []string{node})
			err := forDuration(r.cfg.Step/2, 32, func(w int) error {
				started := time.Now()
				code, err := cs[w].do("GET", "/v1/accounts/"+r.accounts[rand.IntN(len(r.accounts))]+"?consistency="+consistency, nil)
				if err != nil || code != 200 {
					return fmt.Errorf("read: %d %v", code, err)
				}
				lats.add(time.Since(started))
				n.Add(1)
				return nil
			})
			closeAll(cs)
			if err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			p50, p99, p999 := percentiles(lats.all())
			r.add(Result{Name: fmt.Sprintf("%s reads on n%d, 32 clients", consistency, i+1), Value: float64(n.Load()) / (r.cfg.Step / 2).Seconds(),
				Unit: "reads/s", P50: p50, P99: p99, P999: p999})
		}
	}
	return nil
}

// forDuration runs fn in c goroutines, again and again, for d.
func forDuration(d time.Duration, c int, fn func(worker int) error) error {
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	var first atomic.Pointer[error]
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && first.Load() == nil {
				if err := fn(w); err != nil {
					first.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	wg.Wait()
	if p := first.Load(); p != nil {
		return *p
	}
	return nil
}

// latencies collects durations from many goroutines.
type latencies struct {
	mu sync.Mutex
	l  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.l = append(l.l, d)
	l.mu.Unlock()
}

func (l *latencies) all() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.l
}
