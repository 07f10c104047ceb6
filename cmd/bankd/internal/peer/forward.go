package peer

import (
	"context"
	"sync"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/groupcommit"
	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/engine"
)

// Limits of one coalesced forward: well inside what the leader takes in
// one request (its batch limits) and in one log entry.
const (
	forwardCommandsMax = 2000
	forwardBytesMax    = 256 << 10
	forwardsInFlight   = 4
	forwardQueueMax    = 10_000
)

// Stages reported to Config.Stage.
const (
	StageForwardWait = "forward_wait" // queued behind earlier forwards
	StageForwardCall = "forward_call" // the call to the leader
)

// submitFunc makes one call for a group of commands, as a body of
// version bv, to the leader at addr.
type submitFunc func(ctx context.Context, addr string, bv uint32, cmds []engine.Command) (uint64, []node.Outcome, error)

// route is where a queue's calls go: a leader, in a body version.
type route struct {
	addr string
	bv   uint32
}

// coalescer coalesces the writes a follower forwards: while earlier calls
// to a leader are in flight, new writes queue, and the next call carries
// all of them (groupcommit). The leader then handles a few large
// requests instead of many small ones (it is the busiest process). There
// is one queue per leader address and body version, so at most one per
// member and version.
type coalescer struct {
	call    submitFunc
	timeout time.Duration // of one call
	stage   func(string, time.Duration)

	mu     sync.Mutex
	queues map[route]chan *forward
}

type forward struct {
	cmds   []engine.Command
	bytes  int
	queued time.Time
	done   chan struct{}
	index  uint64
	out    []node.Outcome
	err    error
}

func (f *forward) Items() int { return len(f.cmds) }
func (f *forward) Bytes() int { return f.bytes }

func newCoalescer(call submitFunc, timeout time.Duration, stage func(string, time.Duration)) *coalescer {
	if stage == nil {
		stage = func(string, time.Duration) {}
	}
	return &coalescer{call: call, timeout: timeout, stage: stage, queues: map[route]chan *forward{}}
}

// forward sends cmds to the leader at addr along with whatever else waits
// for it.
func (c *coalescer) forward(ctx context.Context, addr string, bv uint32, cmds []engine.Command) (uint64, []node.Outcome, error) {
	fw := &forward{cmds: cmds, bytes: engine.EncodedBytesMax(cmds), queued: time.Now(), done: make(chan struct{})}
	select {
	case c.queue(route{addr, bv}) <- fw:
	case <-ctx.Done():
		return 0, nil, ctx.Err() // not sent
	}
	select {
	case <-fw.done:
		return fw.index, fw.out, fw.err
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
}

// queue is the route's queue, started on first use.
func (c *coalescer) queue(to route) chan *forward {
	c.mu.Lock()
	defer c.mu.Unlock()
	q, ok := c.queues[to]
	if !ok {
		q = make(chan *forward, forwardQueueMax)
		c.queues[to] = q
		lim := groupcommit.Limits{Items: forwardCommandsMax, Bytes: forwardBytesMax, Inflight: forwardsInFlight}
		go groupcommit.Run(nil, q, lim, func(g groupcommit.Group[*forward], landed func()) error {
			go func() {
				defer landed()
				c.send(to, g)
			}()
			return nil
		})
	}
	return q
}

// send makes one call for the group and hands each member its outcomes.
func (c *coalescer) send(to route, g groupcommit.Group[*forward]) {
	all := make([]engine.Command, 0, g.Items)
	for _, fw := range g.Requests {
		all = append(all, fw.cmds...)
		c.stage(StageForwardWait, time.Since(fw.queued))
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	called := time.Now()
	index, out, err := c.call(ctx, to.addr, to.bv, all)
	c.stage(StageForwardCall, time.Since(called))
	off := 0
	for _, fw := range g.Requests {
		if err == nil {
			fw.index, fw.out = index, out[off:off+len(fw.cmds)]
		}
		fw.err = err
		off += len(fw.cmds)
		close(fw.done)
	}
}
