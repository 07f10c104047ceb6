package systest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// TestLeaderCrashDuringWrites crashes the leader (its ZooKeeper connection
// cut and its API gone, as after kill -9) while workers deposit through
// every node. Each deposit has its own idempotency key and is retried,
// through the next node, until it is acknowledged. Afterwards every
// account holds exactly the number of deposits made to it: nothing
// acknowledged was lost and no retry applied twice.
func TestLeaderCrashDuringWrites(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 3), 3, nil)
	const workers, opsPerWorker = 4, 120
	leader, _ := c.leader()
	for w := range workers {
		mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: fmt.Sprintf("W-%d", w), Name: "worker"}, nil), 201)
	}

	var done, retries atomic.Int64
	crashed := make(chan time.Time, 1)
	var firstAfter atomic.Int64 // unix nanos of the first ack after the crash
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for op := range opsPerWorker {
				key := fmt.Sprintf("w%d-%d", w, op)
				retries.Add(int64(depositUntilAcked(t, c, w+op, fmt.Sprintf("W-%d", w), key)))
				now := time.Now()
				select {
				case at := <-crashed:
					crashed <- at
					if now.After(at) {
						firstAfter.CompareAndSwap(0, now.UnixNano())
					}
				default:
				}
				done.Add(1)
			}
		}()
	}
	zktest.Eventually(t, 30*time.Second, "a third of the writes", func() bool { return done.Load() >= workers*opsPerWorker/3 })
	at := time.Now()
	crash(c, leader)
	crashed <- at
	wg.Wait()

	took := time.Unix(0, firstAfter.Load()).Sub(at)
	// A figure, not a check: bankctl bench measures failover.
	t.Logf("first write acknowledged %v after the leader crashed (session timeout %v); %d retries", took, sessionTimeout, retries.Load())
	newLeader, ok := c.leader()
	if !ok || newLeader == leader {
		t.Fatalf("no new leader")
	}
	c.start(leader) // the crashed node comes back and catches up
	c.waitReady(leader)
	d := c.converged()
	for w := range workers {
		r := call(t, leader, "GET", fmt.Sprintf("/v1/accounts/W-%d?min_index=%d", w, d.Index), nil, nil)
		if a := decode[wire.Account](t, r); a.Balance != opsPerWorker {
			t.Errorf("W-%d holds %d after %d acknowledged deposits", w, a.Balance, opsPerWorker)
		}
	}
}

// crash takes tn down the hard way: its API stops answering and its
// ZooKeeper session is left to expire, as if the process were killed.
func crash(c *cluster, tn *testNode) {
	tn.srv.Close()
	tn.cutter.Cut()
	tn.n.Close()
	tn.n = nil
}

// depositUntilAcked deposits 1 with key through the nodes in turn, from
// start, until one acknowledges it; it returns how many tries failed.
func depositUntilAcked(t *testing.T, c *cluster, start int, account, key string) int {
	header := map[string]string{wire.HeaderIdempotencyKey: key}
	deadline := time.Now().Add(60 * time.Second)
	for try := 0; ; try++ {
		tn := c.nodes[(start+try)%len(c.nodes)]
		r, err := tryCall(tn, "POST", "/v1/accounts/"+account+"/deposit", wire.Amount{Amount: 1}, header)
		if err == nil && r.status == 200 {
			return try
		}
		if err == nil && !r.problem().Retryable {
			t.Errorf("deposit %s: %s", key, r)
			return try
		}
		if time.Now().After(deadline) {
			t.Errorf("deposit %s never acknowledged: %v %v", key, r, err)
			return try
		}
		time.Sleep(20 * time.Millisecond)
	}
}
