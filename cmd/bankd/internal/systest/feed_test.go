package systest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/api"
	"github.com/zkbank/zkbank/cmd/internal/client"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/history"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// consumer follows the change feed as a downstream system does, with
// the client bankctl events uses: it keeps every event and its last
// cursor, and it drops its own connection now and then, resuming from
// that cursor.
type consumer struct {
	mu       sync.Mutex
	events   []wire.Event
	accounts map[string]uint64 // balances, as the events left them
	order    error             // the first event out of log order, or seen twice
	resumed  atomic.Int64      // reconnects, the client's and its own
}

func (c *consumer) take(ev wire.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, err := history.ParseCursor(ev.Cursor)
	if err != nil {
		return err
	}
	if n := len(c.events); n > 0 && c.order == nil {
		if prev, _ := history.ParseCursor(c.events[n-1].Cursor); !prev.Less(cur) {
			c.order = fmt.Errorf("event %s came after %s", ev.Cursor, c.events[n-1].Cursor)
		}
	}
	c.events = append(c.events, ev)
	for _, a := range ev.Accounts {
		c.accounts[a.Account] = a.Balance
	}
	return nil
}

func (c *consumer) last() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.events) == 0 {
		return "0"
	}
	return c.events[len(c.events)-1].Cursor
}

// run follows the feed until ctx ends, cutting its own connection after
// a random while each time.
func (c *consumer) run(ctx context.Context, cl *client.Client) error {
	for ctx.Err() == nil {
		round, cancel := context.WithTimeout(ctx, time.Duration(200+rand.IntN(800))*time.Millisecond)
		err := cl.Events(round, client.Feed{From: c.last(), Follow: true, Idle: 5 * time.Second,
			Reconnected: func(string, string, error) { c.resumed.Add(1) }}, c.take)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			return err
		}
		c.resumed.Add(1)
	}
	return nil
}

func (c *cluster) apiClient() *client.Client {
	var eps []string
	for _, tn := range c.nodes {
		eps = append(eps, "https://"+tn.addr)
	}
	cl, err := client.New(eps, c.clientTLS.Client(nil))
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// TestTheFeedGoesThroughLeaderKills: a consumer follows the change feed
// while workers deposit through every node and the leader is killed
// twice (and comes back). It sees every command exactly once, in log
// order, the same events a node's whole feed holds, and its balances
// add up to the digest's.
func TestTheFeedGoesThroughLeaderKills(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 3), 3, nil)
	const workers, opsPerWorker = 3, 150
	leader, _ := c.leader()
	for w := range workers {
		mustOK(t, call(t, leader, "POST", "/v1/accounts", wire.CreateAccount{Account: fmt.Sprintf("F-%d", w), Name: "feed"}, nil), 201)
	}
	cons := &consumer{accounts: map[string]uint64{}}
	ctx, stop := context.WithCancel(context.Background())
	consumed := make(chan error, 1)
	go func() { consumed <- cons.run(ctx, c.apiClient()) }()
	defer stop()

	var done atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for op := range opsPerWorker {
				depositUntilAcked(t, c, w+op, fmt.Sprintf("F-%d", w), fmt.Sprintf("f%d-%d", w, op))
				done.Add(1)
			}
		}()
	}
	for kill := 1; kill <= 2; kill++ {
		zktest.Eventually(t, 60*time.Second, "more writes", func() bool { return done.Load() >= int64(kill*workers*opsPerWorker/3) })
		old, _ := c.leader()
		crash(c, old)
		zktest.Eventually(t, 30*time.Second, "a new leader", func() bool { l, ok := c.leader(); return ok && l != old })
		c.start(old)
	}
	wg.Wait()
	c.waitReady(c.nodes...)
	d := c.converged()

	want := map[string]uint64{}
	for w := range workers {
		want[fmt.Sprintf("F-%d", w)] = opsPerWorker
	}
	zktest.Eventually(t, 30*time.Second, "the consumer's balances reach the nodes'", func() bool {
		cons.mu.Lock()
		defer cons.mu.Unlock()
		for a, b := range want {
			if cons.accounts[a] != b {
				return false
			}
		}
		return true
	})
	stop()
	if err := <-consumed; err != nil {
		t.Fatalf("the consumer stopped: %v", err)
	}
	if cons.order != nil {
		t.Fatal(cons.order)
	}
	var total uint64
	for _, b := range cons.accounts {
		total += b
	}
	if uint64(len(cons.accounts)) != d.Accounts || total != d.TotalBalance {
		t.Fatalf("the consumer holds %d accounts with %d in all; the digest at %d says %d with %d", len(cons.accounts), total, d.Index, d.Accounts, d.TotalBalance)
	}
	// Every event once: the same as a whole feed read at once, from a
	// node that was killed and came back.
	var whole []wire.Event
	one, err := client.New([]string{"https://" + c.nodes[0].addr}, c.clientTLS.Client(nil))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := one.Events(rctx, client.Feed{From: "0"}, func(ev wire.Event) error { whole = append(whole, ev); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(whole) != len(cons.events) {
		t.Fatalf("the consumer saw %d events, a node's whole feed holds %d", len(cons.events), len(whole))
	}
	deposits := 0
	for i := range whole {
		if whole[i].Cursor != cons.events[i].Cursor || whole[i].Code != cons.events[i].Code {
			t.Fatalf("event %d: the consumer saw %+v, the node holds %+v", i, cons.events[i], whole[i])
		}
		if whole[i].Op == "deposit" && whole[i].Code == "ok" {
			deposits++
		}
	}
	if deposits != workers*opsPerWorker {
		t.Fatalf("%d deposits in the feed, %d acknowledged (a retry counted twice, or one lost)", deposits, workers*opsPerWorker)
	}
	t.Logf("%d events through %d reconnects", len(whole), cons.resumed.Load())
}

// TestAFeedEndsForASlowConsumer: a consumer that reads slower than the
// bank writes is cut off with a last line that says so and where to
// resume; resumed there it misses nothing. A customer's feed and
// statement hold only its own accounts; SSE carries the cursor as the
// event's id.
func TestAFeedEndsForASlowConsumer(t *testing.T) {
	c := newCluster(t, zktest.Shared(t, 3), 1, nil)
	tn := c.nodes[0]
	// A write may wait as long as the consumer pauses.
	c.feed = api.FeedConfig{LagMax: 20, CheckEvery: 200 * time.Millisecond, Chunk: 50, WriteTimeout: 2 * time.Minute}
	c.stop(tn)
	c.start(tn)
	c.waitReady(tn)
	mustOK(t, call(t, tn, "POST", "/v1/accounts", wire.CreateAccount{Account: "S-1", Name: "slow", Balance: 5}, nil), 201)
	mustOK(t, call(t, tn, "POST", "/v1/accounts", wire.CreateAccount{Account: "S-2", Name: "other"}, nil), 201)

	req, _ := http.NewRequest("GET", "https://"+tn.addr+"/v1/events?from=0&follow=true", nil)
	stream := &http.Client{Transport: c.client.Transport}
	resp, err := stream.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != wire.ContentNDJSON {
		t.Fatalf("the feed answered %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	// The consumer pauses while the bank writes far more than the pipe
	// to it holds (entries of 1,000 deposits, ~250 KB each), then reads
	// as fast as it can: the feed, stuck in a write meanwhile, finds it
	// more entries behind than LagMax, and no nearer than before.
	writing, stopWriting := context.WithCancel(context.Background())
	defer stopWriting()
	var batches atomic.Int64
	go func() {
		for i := 0; writing.Err() == nil; i++ {
			cmds := make([]wire.Command, 1000)
			for j := range cmds {
				cmds[j] = wire.Command{Op: "deposit", Account: "S-2", Amount: 1, Key: fmt.Sprintf("s-%d-%d", i, j)}
			}
			if r, err := tryCall(tn, "POST", "/v1/batch", wire.Batch{Commands: cmds}, nil); err == nil && r.status == 200 {
				batches.Add(1)
			}
		}
	}()
	sc := bufio.NewScanner(resp.Body)
	var lastEvent, end string
	paused := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, `{"end":`) {
			end = line
			break
		}
		if !strings.HasPrefix(line, `{"heartbeat":`) && !strings.HasSuffix(line, "}") {
			t.Fatalf("a cut line (%v): %s", sc.Err(), line)
		}
		if !strings.HasPrefix(line, `{"heartbeat":`) {
			lastEvent = decodeLine[wire.Event](t, line).Cursor
		}
		if !paused {
			paused = true
			zktest.Eventually(t, 2*time.Minute, "the bank writes past the pipe", func() bool { return batches.Load() >= 80 })
		}
	}
	stopWriting()
	fin := decodeLine[wire.FeedEnd](t, end)
	if fin.End != wire.CodeTooSlow || fin.Cursor != lastEvent || !strings.Contains(fin.Detail, "entries behind") {
		t.Fatalf("the feed ended with %q after event %s", end, lastEvent)
	}
	r := call(t, tn, "GET", "/v1/events?from="+fin.Cursor, nil, nil)
	if first := decodeLine[wire.Event](t, strings.SplitN(string(r.body), "\n", 2)[0]); r.status != 200 || !after(t, first.Cursor, fin.Cursor) {
		t.Fatalf("resumed after %s: %s", fin.Cursor, first.Cursor)
	}

	ada, _ := c.newToken(tn, "ada", "customer", "S-1")
	feed := c.withToken(tn, ada, "GET", "/v1/events?from=0", nil)
	lines := strings.Split(strings.TrimSpace(string(feed.body)), "\n")
	if feed.status != 200 || len(lines) != 1 || decodeLine[wire.Event](t, lines[0]).Account != "S-1" {
		t.Fatalf("a customer's feed: %d lines: %.300s", len(lines), feed.body)
	}
	if r := c.withToken(tn, ada, "GET", "/v1/events?account=S-2", nil); r.status != 403 {
		t.Fatalf("a customer's feed of another account: %s", r)
	}
	if r := c.withToken(tn, ada, "GET", "/v1/accounts/S-2/history", nil); r.status != 403 {
		t.Fatalf("a customer's statement of another account: %s", r)
	}
	st := decode[wire.Statement](t, c.withToken(tn, ada, "GET", "/v1/accounts/S-1/history", nil))
	if len(st.Lines) != 1 || st.Lines[0].Balance != 5 || st.HistoryFrom != 1 {
		t.Fatalf("a customer's statement: %+v", st)
	}

	sse := call(t, tn, "GET", "/v1/events?from=0&account=S-1", nil, map[string]string{"Accept": wire.ContentEventStream})
	if sse.header.Get("Content-Type") != wire.ContentEventStream || !strings.HasPrefix(string(sse.body), "id: 1.0\nevent: command\ndata: {") {
		t.Fatalf("SSE: %s", sse)
	}
	for _, bad := range []string{"from=x", "from=1.x", "follow=yes", "account=no%20such"} {
		if r := call(t, tn, "GET", "/v1/events?"+bad, nil, nil); r.status != 400 || r.problem().Code != wire.CodeInvalidParameter {
			t.Errorf("GET /v1/events?%s: %s", bad, r)
		}
	}
	checkFeedEndsAtShutdown(t, tn, stream)
}

// checkFeedEndsAtShutdown: a feed from now names where it starts (a
// heartbeat with the node's last index); a node shutting down ends its
// feeds at once, with a last line that says so, and does not wait out its
// grace.
func checkFeedEndsAtShutdown(t *testing.T, tn *testNode, stream *http.Client) {
	t.Helper()
	resp, err := stream.Get("https://" + tn.addr + "/v1/events?from=now&follow=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	started := time.Now()
	shut := make(chan error, 1)
	go func() { shut <- tn.srv.Shutdown(ctx) }()
	sc := bufio.NewScanner(resp.Body)
	var first, last string
	for sc.Scan() {
		if first == "" {
			first = sc.Text()
		}
		last = sc.Text()
	}
	if hb := decodeLine[wire.Heartbeat](t, first); hb.Cursor != fmt.Sprint(tn.n.Applied()) {
		t.Fatalf("a feed from now began with %q; the node applied %d", first, tn.n.Applied())
	}
	if end := decodeLine[wire.FeedEnd](t, last); end.End != wire.CodeStopping {
		t.Fatalf("a feed at shutdown ended with %q", last)
	}
	if err := <-shut; err != nil {
		t.Fatalf("shutdown with a feed open: %v after %v", err, time.Since(started))
	}
}

func decodeLine[T any](t *testing.T, line string) T {
	t.Helper()
	return decode[T](t, response{status: 200, body: []byte(line)})
}

// after reports whether cursor a comes after b.
func after(t *testing.T, a, b string) bool {
	t.Helper()
	ca, err1 := history.ParseCursor(a)
	cb, err2 := history.ParseCursor(b)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	return cb.Less(ca)
}
