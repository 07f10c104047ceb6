package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/zkbank/zkbank/cmd/internal/devcluster"
	"github.com/zkbank/zkbank/cmd/internal/wire"
)

// fault is one injected failure.
type fault struct {
	Kind     string    `json:"kind"`
	Target   string    `json:"target"`
	At       time.Time `json:"at"`
	Healed   time.Time `json:"healed"`
	Note     string    `json:"note,omitempty"`
	failover bool      // the leader was lost: measure the time to the next write
}

var faultKinds = []string{"kill_leader", "kill_follower", "pause_leader", "kill_zookeeper", "trim_restart"}

// nemesis injects faults one at a time, in a seeded random order that
// covers every kind before repeating, until d has passed.
func (c *cluster) nemesis(h *History, rng *rand.Rand, d time.Duration) []fault {
	var out []fault
	end := time.Now().Add(d)
	for round := 0; time.Now().Before(end); round++ {
		if round%len(faultKinds) == 0 {
			rng.Shuffle(len(faultKinds), func(i, j int) { faultKinds[i], faultKinds[j] = faultKinds[j], faultKinds[i] })
		}
		time.Sleep(time.Duration(500+rng.IntN(1500)) * time.Millisecond) // let the workload run
		f := c.inject(faultKinds[round%len(faultKinds)], rng)
		c.heal()
		f.Healed = time.Now()
		c.t.Logf("fault %d: %s on %s, healed after %v %s", round+1, f.Kind, f.Target, f.Healed.Sub(f.At).Round(time.Millisecond), f.Note)
		out = append(out, f)
	}
	return out
}

func (c *cluster) inject(kind string, rng *rand.Rand) fault {
	leader, followers := c.roles()
	procs := c.state()
	f := fault{Kind: kind}
	switch kind {
	case "kill_leader":
		f.Target, f.failover = leader, true
		f.At = time.Now()
		c.signal(procs[leader].PID, syscall.SIGKILL)
	case "kill_follower":
		f.Target = followers[rng.IntN(len(followers))]
		f.At = time.Now()
		c.signal(procs[f.Target].PID, syscall.SIGKILL)
	case "pause_leader": // a partition from ZooKeeper: its session expires
		f.Target, f.failover = leader, true
		f.At = time.Now()
		c.signal(procs[leader].PID, syscall.SIGSTOP)
		time.Sleep(2*sessionTimeout + time.Second)
		c.signal(procs[leader].PID, syscall.SIGCONT)
	case "kill_zookeeper":
		f.Target = fmt.Sprintf("zk%d", 1+rng.IntN(3))
		f.At = time.Now()
		c.signal(procs[f.Target].PID, syscall.SIGKILL)
	case "trim_restart":
		f.Target = followers[len(followers)-1]
		f.At = time.Now()
		f.Note = c.trimPast(procs[f.Target])
	}
	return f
}

func (c *cluster) signal(pid int, sig syscall.Signal) {
	if pid == 0 {
		c.t.Fatalf("no process to signal")
	}
	if err := syscall.Kill(pid, sig); err != nil {
		c.t.Fatalf("signal %d: %v", pid, err)
	}
}

// trimPast pauses a follower until the leader has trimmed the log past it,
// then kills it: the supervisor restarts it, and it must install a peer's
// snapshot to catch up.
func (c *cluster) trimPast(p devcluster.Proc) string {
	a := once(strings.TrimPrefix(p.Addr, "https://"), "GET", "/v1/digest", nil, "")
	var d wire.Digest
	json.Unmarshal(a.body, &d)
	c.signal(p.PID, syscall.SIGSTOP)
	deadline := time.Now().Add(30 * time.Second)
	trimmed := false
	for !trimmed && time.Now().Before(deadline) {
		var cl wire.Cluster
		if r := send(context.Background(), c.endpoints, 0, "GET", "/v1/cluster", nil, "", 5*time.Second); r.status == 200 && json.Unmarshal(r.body, &cl) == nil {
			trimmed = cl.TrimmedBelow > d.Index+1
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.signal(p.PID, syscall.SIGKILL) // a stopped process dies too
	before := countIn(p.Log, "installed a peer's snapshot")
	c.heal()
	if countIn(p.Log, "installed a peer's snapshot") > before {
		return "(installed a peer's snapshot)"
	}
	if !trimmed {
		return "(the log was not trimmed past it in 30s)"
	}
	return "(restarted without a snapshot install)"
}

func countIn(path, s string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), s)
}
