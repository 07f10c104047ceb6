package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zkbank/zkbank/cmd/internal/devcluster"
	"github.com/zkbank/zkbank/cmd/internal/wire"
)

func (r *run) clusterView() (wire.Cluster, error) {
	resp, err := r.http.Get(r.url(r.endpoints[0], "/v1/cluster"))
	if err != nil {
		return wire.Cluster{}, err
	}
	defer resp.Body.Close()
	var cl wire.Cluster
	return cl, json.NewDecoder(resp.Body).Decode(&cl)
}

// procs maps process ids to the supervisor's records.
func (r *run) procs() (map[string]devcluster.Proc, error) {
	st, err := devcluster.ReadState(r.dir)
	if err != nil {
		return nil, err
	}
	out := map[string]devcluster.Proc{}
	for _, p := range st.Procs {
		out[p.ID] = p
	}
	return out, nil
}

// roles returns the leader's and the followers' records.
func (r *run) roles() (devcluster.Proc, []devcluster.Proc, error) {
	var leader devcluster.Proc
	var followers []devcluster.Proc
	cl, err := r.clusterView()
	if err != nil || cl.Leader == nil {
		return leader, nil, fmt.Errorf("bench: no leader: %v", err)
	}
	procs, err := r.procs()
	if err != nil {
		return leader, nil, err
	}
	for _, m := range cl.Members {
		if m.ID == cl.Leader.ID {
			leader = procs[m.ID]
		} else {
			followers = append(followers, procs[m.ID])
		}
	}
	return leader, followers, nil
}

func addrOf(p devcluster.Proc) string {
	return strings.TrimPrefix(strings.TrimPrefix(p.Addr, "https://"), "http://")
}

// waitHealthy waits until every node is ready and one leads.
func (r *run) waitHealthy(within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		ready := 0
		for _, ep := range r.endpoints {
			if code, _ := r.get(ep, "/readyz"); code == 200 {
				ready++
			}
		}
		if _, _, err := r.roles(); err == nil && ready == len(r.endpoints) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("bench: cluster not healthy after %v", within)
}

// failover kills the leader (kill -9) three times and measures the time
// until a write through a surviving node succeeds.
func (r *run) failover(ctx context.Context) error {
	var times []float64
	for range 3 {
		leader, followers, err := r.roles()
		if err != nil {
			return err
		}
		killed := time.Now()
		syscall.Kill(leader.PID, syscall.SIGKILL)
		for i := 0; ; i++ {
			node := addrOf(followers[i%len(followers)])
			resp, err := r.quick.Post(r.url(node, "/v1/accounts/"+r.accounts[0]+"/deposit"), "application/json", strings.NewReader(`{"amount":1}`))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Since(killed) > time.Minute {
				return fmt.Errorf("bench: no write for a minute after killing the leader")
			}
			time.Sleep(10 * time.Millisecond)
		}
		times = append(times, time.Since(killed).Seconds())
		if err := r.waitHealthy(time.Minute); err != nil {
			return err
		}
	}
	sort.Float64s(times)
	r.add(Result{Name: "failover: kill -9 leader to first write (median of 3)", Value: times[1], Unit: "s",
		Note: fmt.Sprintf("runs %.2f, %.2f, %.2f s; session timeout 4 s", times[0], times[1], times[2])})
	return nil
}

// catchUpAndMemory pauses a follower, loads a million accounts (a million
// commands) through the batch API, waits until the log is trimmed past
// the follower, measures memory, then restarts the follower and times how
// long it takes to be ready again (a snapshot install plus the tail).
func (r *run) catchUpAndMemory(ctx context.Context) error {
	_, followers, err := r.roles()
	if err != nil {
		return err
	}
	away := followers[len(followers)-1]
	var d wire.Digest
	resp, err := r.http.Get(away.Addr + "/v1/digest")
	if err != nil {
		return err
	}
	json.NewDecoder(resp.Body).Decode(&d)
	resp.Body.Close()
	syscall.Kill(away.PID, syscall.SIGSTOP)
	var live []string
	for _, ep := range r.endpoints {
		if ep != addrOf(away) {
			live = append(live, ep)
		}
	}
	started := time.Now()
	if err := r.loadAccounts(live, 1_000_000); err != nil {
		syscall.Kill(away.PID, syscall.SIGCONT)
		return err
	}
	r.add(Result{Name: "batch API account creates, 1,000,000 in batches of 1000", Value: 1e6 / time.Since(started).Seconds(), Unit: "creates/s"})
	if err := r.waitTrimmedPast(live, d.Index); err != nil {
		syscall.Kill(away.PID, syscall.SIGCONT)
		return err
	}
	procs, _ := r.procs()
	for _, ep := range live {
		for _, p := range procs {
			if addrOf(p) == ep {
				r.add(Result{Name: fmt.Sprintf("bankd %s resident memory, %d accounts", p.ID, 1_000_000+preloadAccounts), Value: rssMB(p.PID), Unit: "MB"})
			}
		}
	}
	syscall.Kill(away.PID, syscall.SIGKILL)
	restarted, err := r.waitRestarted(away)
	if err != nil {
		return err
	}
	for {
		if code, _ := r.get(addrOf(away), "/readyz"); code == 200 {
			break
		}
		if time.Since(restarted) > 5*time.Minute {
			return fmt.Errorf("bench: %s not ready 5 minutes after its restart", away.ID)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.add(Result{Name: "catch-up: restart to ready after missing 1M commands", Value: time.Since(restarted).Seconds(), Unit: "s",
		Note: "the log was trimmed past it: snapshot install, then the tail"})
	procs, _ = r.procs()
	r.add(Result{Name: fmt.Sprintf("bankd %s resident memory after catching up", away.ID), Value: rssMB(procs[away.ID].PID), Unit: "MB"})
	return nil
}

func (r *run) loadAccounts(nodes []string, n int) error {
	next := make(chan int, 64)
	go func() {
		for start := 0; start < n; start += 1000 {
			next <- start
		}
		close(next)
	}()
	return forEach(8, next, func(w, start int) error {
		b := wire.Batch{Commands: make([]wire.Command, 0, 1000)}
		for i := start; i < min(start+1000, n); i++ {
			acct := fmt.Sprintf("M-%07d", i)
			b.Commands = append(b.Commands, wire.Command{Op: "create_account", Key: "m-" + acct, Account: acct, Name: "bench", Balance: 100})
		}
		code, err := r.post(nodes[w%len(nodes)], "/v1/batch", b, nil)
		if err != nil || code != 200 {
			return fmt.Errorf("bench: load accounts: %d %v", code, err)
		}
		return nil
	})
}

func forEach(c int, items <-chan int, fn func(w, item int) error) error {
	errs := make(chan error, c)
	for w := range c {
		go func() {
			for it := range items {
				if err := fn(w, it); err != nil {
					errs <- err
					for range items {
					}
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range c {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// waitTrimmedPast waits until the log is trimmed past index. The leader
// trims only below its newest snapshot and every live node's progress,
// keeping --log-retain entries, so 16 clients keep depositing meanwhile:
// the log has to move on past index before the trim point can.
func (r *run) waitTrimmedPast(nodes []string, index uint64) error {
	stop := make(chan struct{})
	defer close(stop)
	for w := range 16 {
		go func() {
			for {
				select {
				case <-stop:
					return
				default: // filler only: a failing cluster shows as no trim before the deadline
					r.post(nodes[w%len(nodes)], "/v1/accounts/"+r.accounts[w%len(r.accounts)]+"/deposit", wire.Amount{Amount: 1}, nil)
				}
			}
		}()
	}
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if cl, err := r.clusterView(); err == nil && cl.TrimmedBelow > index+1 {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("bench: the log was not trimmed past %d in 3 minutes", index)
}

// waitRestarted waits for the supervisor to start p again and returns when.
func (r *run) waitRestarted(p devcluster.Proc) (time.Time, error) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if procs, err := r.procs(); err == nil && procs[p.ID].PID != p.PID && procs[p.ID].PID != 0 {
			return time.Now(), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("bench: %s was not restarted", p.ID)
}

// rssMB reads a process's resident memory from /proc.
func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
