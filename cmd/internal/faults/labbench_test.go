package faults

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zkbank/zkbank/cmd/internal/netlab"
	"github.com/zkbank/zkbank/cmd/internal/wire"
)

var labBenchFor = 10 * time.Second // each measurement

// BenchmarkLabWrites measures writes across the lab's hosts, from its
// client host: single commands from 32 clients, and batches of 100 from 4,
// with no delay between hosts and then with 50 ms each way between any
// two of them, the client host included (netlab.SlowAll).
// The figures go to docs/benchmarks.md; run with -benchtime 1x (make
// bench-lab).
func BenchmarkLabWrites(b *testing.B) {
	if spec := os.Getenv(labEnv); spec != "" {
		labWrites(b, spec)
		return
	}
	onClientHost(b, "-test.run=^$", "-test.bench=^BenchmarkLabWrites$", "-test.benchtime=1x")
}

// labWrites measures each delay on a cluster started after the delay was
// put in place, so that every connection (bankd to ZooKeeper, between
// ZooKeeper servers, between bankd, from the clients) runs through it.
func labWrites(b *testing.B, spec string) {
	rng := seeded(b)
	lab, err := netlab.Attach(spec)
	if err != nil {
		b.Fatal(err)
	}
	for _, delay := range []time.Duration{0, 50 * time.Millisecond} {
		var slow *netlab.Slow
		if delay > 0 {
			if slow, err = lab.SlowAll(netlab.Link{Delay: delay}); err != nil {
				b.Fatal(err)
			}
		}
		c, _ := onLab(b, spec, rng, func(int) []string { return []string{"--rate-limit", "0"} })
		accounts := c.createAccounts("A", 32)
		single := c.load(accounts, 32, 1, labBenchFor)
		batch := c.load(accounts, 4, 100, labBenchFor)
		b.Logf("%v between hosts: single commands (32 clients): %s", delay, single)
		b.Logf("%v between hosts: batches of 100 (4 clients): %s", delay, batch)
		c.stop()
		if slow != nil {
			if err := slow.Close(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// loadResult is one measurement.
type loadResult struct {
	commands, errors int
	firstError       string // the first failed request's answer
	took             time.Duration
	lat              []time.Duration
}

func (r loadResult) String() string {
	slices.Sort(r.lat)
	q := func(p float64) time.Duration {
		if len(r.lat) == 0 {
			return 0
		}
		return r.lat[int(p*float64(len(r.lat)-1))].Round(100 * time.Microsecond)
	}
	s := fmt.Sprintf("%.0f commands/s, p50 %v, p99 %v, %d failed requests", float64(r.commands)/r.took.Seconds(), q(0.5), q(0.99), r.errors)
	if r.firstError != "" {
		s += " (the first: " + r.firstError + ")"
	}
	return s
}

// load runs clients closed loops of deposits (perBatch commands a
// request, through /v1/batch when more than one) against random nodes
// for d.
func (c *cluster) load(accounts []string, clients, perBatch int, d time.Duration) loadResult {
	var mu sync.Mutex
	var res loadResult
	end := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for seq := 0; time.Now().Before(end); seq++ {
				key := fmt.Sprintf("bench-%d-%d-%d", w, seq, start.UnixNano())
				path, body := c.request(rng, accounts, perBatch, key)
				t0 := time.Now()
				a := onceWithin(10*time.Second, c.endpoints[rng.IntN(len(c.endpoints))], "POST", path, body, key)
				lat := time.Since(t0)
				mu.Lock()
				if a.status == 200 {
					res.commands += perBatch
					res.lat = append(res.lat, lat)
				} else {
					res.errors++
					if res.firstError == "" {
						res.firstError = fmt.Sprintf("%d %.200s%v", a.status, a.body, a.err)
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.took = time.Since(start)
	return res
}

func (c *cluster) request(rng *rand.Rand, accounts []string, perBatch int, key string) (string, []byte) {
	if perBatch == 1 {
		body, _ := json.Marshal(wire.Amount{Amount: 1})
		return "/v1/accounts/" + accounts[rng.IntN(len(accounts))] + "/deposit", body
	}
	bt := wire.Batch{Commands: make([]wire.Command, perBatch)}
	for i := range bt.Commands {
		bt.Commands[i] = wire.Command{Op: "deposit", Key: fmt.Sprintf("%s-%d", key, i), Account: accounts[rng.IntN(len(accounts))], Amount: 1}
	}
	body, _ := json.Marshal(bt)
	return "/v1/batch", body
}
