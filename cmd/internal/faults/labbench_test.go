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
// with no delay between hosts and then with 50 ms (each host's traffic
// through a 25 ms proxy, so host to host crosses two, client to host one).
// The figures go to docs/benchmarks.md; run with -benchtime 1x (make
// bench-lab).
func BenchmarkLabWrites(b *testing.B) {
	if spec := os.Getenv(labEnv); spec != "" {
		labWrites(b, spec)
		return
	}
	onClientHost(b, "-test.run=^$", "-test.bench=^BenchmarkLabWrites$", "-test.benchtime=1x")
}

func labWrites(b *testing.B, spec string) {
	rng := seeded(b)
	c, lab := onLab(b, spec, rng, func(int) []string { return []string{"--rate-limit", "0"} })
	defer c.stop()
	accounts := c.createAccounts(32)
	for _, delay := range []time.Duration{0, 25 * time.Millisecond} {
		var slow []*netlab.Slow
		for _, h := range lab.Hosts()[:3] {
			if delay == 0 {
				break
			}
			s, err := lab.SlowDown(h, netlab.Link{Delay: delay})
			if err != nil {
				b.Fatal(err)
			}
			slow = append(slow, s)
		}
		between := 2 * delay
		single := c.load(accounts, 32, 1, labBenchFor)
		batch := c.load(accounts, 4, 100, labBenchFor)
		b.Logf("%v between hosts: single commands (32 clients): %s", between, single)
		b.Logf("%v between hosts: batches of 100 (4 clients): %s", between, batch)
		for _, s := range slow {
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// loadResult is one measurement.
type loadResult struct {
	commands, errors int
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
	return fmt.Sprintf("%.0f commands/s, p50 %v, p99 %v, %d failed requests", float64(r.commands)/r.took.Seconds(), q(0.5), q(0.99), r.errors)
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
