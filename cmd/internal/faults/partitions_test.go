package faults

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zkbank/zkbank/cmd/internal/audit"
	"github.com/zkbank/zkbank/cmd/internal/devcluster"
	"github.com/zkbank/zkbank/cmd/internal/netlab"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/seal"
)

var partitionsDuration = flag.Duration("partitions.duration", 0, "how long the partition nemesis runs after one round of every kind (make test-partitions runs it longer)")

// labEnv carries the lab's spec to the part of TestBankUnderPartitions
// that runs on the lab's client host.
const labEnv = "ZKBANK_NETLAB"

// clockOffsets are the bankd's wall clocks (--test-clock-offset): every
// leader is minutes off ZooKeeper's, ahead or behind its predecessor.
var clockOffsets = []string{"3m", "-3m", "90s"}

// TestBankUnderPartitions runs the bank on three hosts of a network lab
// (each a ZooKeeper server and a bankd) and the workload on a fourth, the
// client host, while a nemesis cuts and slows the network one fault at a
// time; then the same checks as TestBankUnderFaults, and the log's times.
// The test builds the lab, then runs itself again on the client host, so
// that every connection the workload and the supervisor open starts there.
func TestBankUnderPartitions(t *testing.T) {
	if spec := os.Getenv(labEnv); spec != "" {
		underPartitions(t, spec)
		return
	}
	t.Parallel() // beside TestBankUnderFaults (the child on the client host runs alone)
	onClientHost(t, "-test.run=^TestBankUnderPartitions$", "-partitions.duration="+partitionsDuration.String())
}

// onClientHost builds a lab of three cluster hosts and a client host,
// runs this test binary again on the client host with args (the child
// finds the lab in labEnv), logs what it prints, and removes the lab,
// checking that nothing of it is left.
func onClientHost(tb testing.TB, args ...string) {
	lab, err := netlab.New("h1", "h2", "h3", "client")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := lab.Close(); err != nil {
			tb.Error(err)
		}
		if left := netlab.Namespaces(os.Getpid()); len(left) > 0 {
			tb.Errorf("the lab left namespaces behind: %v", left)
		}
	})
	bin := buildBankd(tb, tb.TempDir())
	args = append(args, "-test.v", "-test.timeout="+flag.Lookup("test.timeout").Value.String(), fmt.Sprintf("-faults.seed=%d", *seedFlag))
	cmd := lab.Host("client").Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), labEnv+"="+lab.Spec(), bankdEnv+"="+bin)
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	_, bench := tb.(*testing.B) // a benchmark's log keeps its first lines alone
	for sc.Scan() {
		if bench {
			fmt.Println(sc.Text())
		} else {
			tb.Log(sc.Text())
		}
	}
	if err := cmd.Wait(); err != nil {
		tb.Fatalf("the run on the client host failed (%v); its output is above", err)
	}
}

// onLab starts the cluster on the lab's three cluster hosts (bankd i and
// ZooKeeper server i on host i), with extra flags for bankd i.
func onLab(t testing.TB, spec string, rng *rand.Rand, nodeArgs func(i int) []string) (*cluster, *netlab.Lab) {
	lab, err := netlab.Attach(spec)
	if err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, runDir(t), rng, func(cfg *devcluster.Config) {
		for i, h := range lab.Hosts()[:3] {
			cfg.Hosts = append(cfg.Hosts, devcluster.Host{Addr: h.Addr, Wrap: h.Wrap})
			cfg.NodeArgs = append(cfg.NodeArgs, nodeArgs(i))
		}
	})
	return c, lab
}

// underPartitions is the part on the client host.
func underPartitions(t *testing.T, spec string) {
	rng := seeded(t)
	started := time.Now()
	c, lab := onLab(t, spec, rng, func(i int) []string { return []string{"--test-clock-offset", clockOffsets[i]} })
	p := &partitioner{c: c, lab: lab, hosts: lab.Hosts()[:3], rng: rng}
	c.runBank(rng, p.nemesis)
	c.checkLogTime(started)
}

// partitioner injects network faults into a cluster whose bankd i and
// ZooKeeper server i run on hosts[i].
type partitioner struct {
	c     *cluster
	lab   *netlab.Lab
	hosts []*netlab.Host
	rng   *rand.Rand
}

var partitionKinds = []string{"isolate_leader", "leader_off_zookeeper", "leader_off_followers", "isolate_follower",
	"one_way_from_leader", "one_way_to_leader", "slow_host"}

// nemesis runs every kind once, in a seeded order, then more rounds until
// -partitions.duration has passed.
func (p *partitioner) nemesis(*History) []fault {
	var out []fault
	end := time.Now().Add(*partitionsDuration)
	for round := 0; round < len(partitionKinds) || time.Now().Before(end); round++ {
		if round%len(partitionKinds) == 0 {
			p.rng.Shuffle(len(partitionKinds), func(i, j int) {
				partitionKinds[i], partitionKinds[j] = partitionKinds[j], partitionKinds[i]
			})
		}
		time.Sleep(time.Duration(500+p.rng.IntN(1000)) * time.Millisecond) // let the workload run
		f := p.inject(partitionKinds[round%len(partitionKinds)])
		if err := p.lab.Heal(); err != nil {
			p.c.t.Fatal(err)
		}
		p.c.heal()
		f.Healed = time.Now()
		p.c.t.Logf("fault %d: %s on %s, healed after %v %s", round+1, f.Kind, f.Target, f.Healed.Sub(f.At).Round(time.Millisecond), f.Note)
		out = append(out, f)
	}
	return out
}

// hold is how long a cut that keeps the leader lasts: past a session's
// expiry, so that an isolated follower loses its session and must rejoin.
const hold = sessionTimeout + time.Second

func (p *partitioner) inject(kind string) fault {
	cur, followers := p.c.newestLeader(20 * time.Second)
	leader := cur.ID
	if leader == "" || len(followers) == 0 {
		p.c.t.Fatalf("no leader and followers to partition (leader %q, followers %v)", leader, followers)
	}
	l := p.host(leader)
	others := p.without(l)
	f := fault{Kind: kind, Target: leader}
	var rules []netlab.Rule
	switch kind {
	case "isolate_leader": // with its ZooKeeper server: a minority; clients still reach it
		f.failover = true
		rules = netlab.Split([]*netlab.Host{l}, others)
	case "leader_off_zookeeper": // its bankd reaches no ZooKeeper server, its own included
		f.failover = true
		for i, h := range p.hosts {
			rules = append(rules, netlab.Rule{From: l, To: h, Port: p.c.cfg.ZKPort + i})
		}
	case "leader_off_followers": // the push streams and forwarded writes break; ZooKeeper is fine
		for _, h := range others {
			rules = append(rules, netlab.PairPort(l, h, p.c.cfg.APIPort+p.index(l))...)
			rules = append(rules, netlab.PairPort(l, h, p.c.cfg.APIPort+p.index(h))...)
		}
	case "isolate_follower": // from the cluster's hosts; clients still reach it, and may read there
		f.Target = followers[p.rng.IntN(len(followers))]
		rules = netlab.Split([]*netlab.Host{p.host(f.Target)}, p.without(p.host(f.Target)))
	case "one_way_from_leader": // what the leader's host sends the others is lost
		f.failover = true
		rules = netlab.OneWay(l, others...)
	case "one_way_to_leader": // what the others send the leader's host is lost
		f.failover = true
		for _, h := range others {
			rules = append(rules, netlab.OneWay(h, l)...)
		}
	case "slow_host": // 100-300 ms each way and 5% of chunks a retransmission late
		f.Target = p.hosts[p.rng.IntN(len(p.hosts))].Name
		s, err := p.lab.SlowDown(p.lab.Host(f.Target), netlab.Link{Delay: 100 * time.Millisecond, Jitter: 200 * time.Millisecond, Loss: 0.05})
		if err != nil {
			p.c.t.Fatal(err)
		}
		f.At = time.Now()
		time.Sleep(hold)
		f.Note = p.probe()
		if err := s.Close(); err != nil {
			p.c.t.Fatal(err)
		}
		return f
	}
	if err := p.lab.Cut(rules...); err != nil {
		p.c.t.Fatal(err)
	}
	f.At = time.Now() // once every host's rules are in place
	switch {
	case f.failover:
		f.Note = p.awaitNewLeader(cur)
		time.Sleep(time.Second) // the cut goes on under the new leader a little
	case kind == "leader_off_followers":
		before := p.applied()
		time.Sleep(hold)
		f.Note = p.followersKeptUp(leader, before, p.applied())
	default:
		time.Sleep(hold)
		f.Note = p.probe()
	}
	return f
}

// applied is each node's applied index, as it answers the client host;
// a node that does not answer in three tries is left out.
func (p *partitioner) applied() map[string]uint64 {
	out := map[string]uint64{}
	for i, ep := range p.c.endpoints {
		for try := 0; try < 3; try++ {
			var d wire.Digest
			if a := onceWithin(5*time.Second, ep, "GET", "/v1/digest", nil, ""); a.status == 200 && json.Unmarshal(a.body, &d) == nil {
				out[fmt.Sprintf("n%d", i+1)] = d.Index
				break
			}
		}
	}
	return out
}

// followersKeptUp checks that, with the leader's pushes cut, followers
// still apply what it appends: they read it from ZooKeeper. Each must
// reach the leader's index at the end of the hold, within 10 s, the cut
// still in place.
func (p *partitioner) followersKeptUp(leader string, before, after map[string]uint64) string {
	target, ok := after[leader]
	if !ok || target <= before[leader] {
		return "(the leader appended nothing during the cut, or did not say)"
	}
	deadline := time.Now().Add(10 * time.Second)
	now := after
	for {
		behind := []string{}
		for id, idx := range now {
			if id != leader && idx < target {
				behind = append(behind, id)
			}
		}
		if len(behind) == 0 {
			return fmt.Sprintf("(leader %d -> %d; followers from ZooKeeper: %v -> %v)", before[leader], target, before, now)
		}
		if time.Now().After(deadline) {
			p.c.t.Errorf("%v did not reach index %d from ZooKeeper within 10 s while the leader's pushes were cut (leader %d -> %d): %v", behind, target, before[leader], target, now)
			return "(followers stuck)"
		}
		time.Sleep(200 * time.Millisecond)
		now = p.applied()
	}
}

// awaitNewLeader waits until a node names a leader of a newer epoch than
// old's, and says after how long: a leader cut from ZooKeeper's majority
// loses its session, and one of the others takes over. When ZooKeeper's
// own leader was on the cut host, its ensemble elects another first,
// which resets every session's timeout: that takes several seconds more.
func (p *partitioner) awaitNewLeader(old wire.Leader) string {
	const within = 40 * time.Second
	start := time.Now()
	for time.Since(start) < within {
		if l, _ := p.c.newestLeader(0); l.Epoch > old.Epoch {
			return fmt.Sprintf("(%s leads epoch %d after %v)", l.ID, l.Epoch, time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.c.t.Errorf("no leader after %s (epoch %d) in %v of the cut", old.ID, old.Epoch, within)
	return "(no new leader)"
}

// probe says who leads now, as the cluster answers the client host.
func (p *partitioner) probe() string {
	if leader, _ := p.c.roles(); leader != "" {
		return "(leader during the fault: " + leader + ")"
	}
	return "(no leader answered during the fault)"
}

// host is the lab host of bankd id (n1 is on hosts[0]).
func (p *partitioner) host(id string) *netlab.Host {
	var i int
	if _, err := fmt.Sscanf(id, "n%d", &i); err != nil || i < 1 || i > len(p.hosts) {
		p.c.t.Fatalf("no host for %q", id)
	}
	return p.hosts[i-1]
}

func (p *partitioner) index(h *netlab.Host) int {
	for i, x := range p.hosts {
		if x == h {
			return i
		}
	}
	p.c.t.Fatalf("host %s is not the cluster's", h.Name)
	return 0
}

func (p *partitioner) without(h *netlab.Host) []*netlab.Host {
	var out []*netlab.Host
	for _, x := range p.hosts {
		if x != h {
			out = append(out, x)
		}
	}
	return out
}

// checkLogTime reads the longest journal: entry times never go back,
// although every leader's clock was minutes off, and they stay near
// ZooKeeper's (this machine's) clock: no leader ahead froze the log's time
// for those after it, none behind held it back.
func (c *cluster) checkLogTime(started time.Time) {
	trust, err := seal.LoadDir(devcluster.CertsDir(c.dir))
	if err != nil {
		c.t.Fatal(err)
	}
	var times []int64
	for i := range c.endpoints {
		d, err := audit.Open(filepath.Join(c.dir, "nodes", fmt.Sprintf("n%d", i+1), "data"), trust)
		if err != nil {
			c.t.Fatal(err)
		}
		var ts []int64
		err = d.Journal.Iterate(d.Journal.First(), d.Journal.Last(), func(e *engine.Entry) error {
			ts = append(ts, e.TimeMs)
			return nil
		})
		d.Close()
		if err != nil {
			c.t.Fatal(err)
		}
		if len(ts) > len(times) {
			times = ts
		}
	}
	const slack = 5 * time.Second // the 1 s bound, ZooKeeper's answer, this check's own lag
	lo, hi := started.Add(-slack).UnixMilli(), time.Now().Add(slack).UnixMilli()
	for i, ms := range times {
		if i > 0 && ms < times[i-1] {
			c.t.Errorf("entry time goes back: %d after %d (entry %d of the journal)", ms, times[i-1], i)
		}
		if ms < lo || ms > hi {
			c.t.Errorf("entry time %s is outside the run (%s .. %s): a leader's skewed clock leaked into the log",
				time.UnixMilli(ms).UTC().Format(time.RFC3339Nano), started.UTC().Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339))
			break
		}
	}
	warned := 0
	for i := range c.endpoints {
		warned += countIn(filepath.Join(c.dir, "nodes", fmt.Sprintf("n%d", i+1), "bankd.log"), "clock is off ZooKeeper's")
	}
	if warned == 0 {
		c.t.Error("no leader warned that its clock is off ZooKeeper's, yet every clock was")
	}
	c.t.Logf("log time: %d entries, never back, all within the run; %d terms warned of their leader's clock", len(times), warned)
}
