package api

import (
	"context"
	"time"

	"github.com/zkbank/zkbank/engine"
)

// Limits of one coalesced forward: well inside what the leader takes in
// one request (its batch limits) and in one log entry.
const (
	forwardCommandsMax = 2000
	forwardBytesMax    = 256 << 10
	forwardsInFlight   = 4
)

// forwarder coalesces the writes a follower forwards: while earlier
// forwards are in flight, new ones queue, and the next call to the leader
// carries all of them. The leader then handles a few large requests
// instead of many small ones (it is the busiest process).
type forwarder struct {
	s     *Server
	queue chan *forward
	slots chan struct{}
}

type forward struct {
	cmds   []engine.Command
	bytes  int
	queued time.Time
	done   chan struct{}
	res    submitted
	err    error
}

func newForwarder(s *Server) *forwarder {
	f := &forwarder{s: s, queue: make(chan *forward, 10_000), slots: make(chan struct{}, forwardsInFlight)}
	go f.run()
	return f
}

// submit forwards cmds to the leader along with whatever else is waiting.
func (f *forwarder) submit(ctx context.Context, cmds []engine.Command) (submitted, error) {
	fw := &forward{cmds: cmds, bytes: commandBytes(cmds), queued: time.Now(), done: make(chan struct{})}
	select {
	case f.queue <- fw:
	case <-ctx.Done():
		return submitted{}, ctx.Err()
	}
	select {
	case <-fw.done:
		return fw.res, fw.err
	case <-ctx.Done():
		return submitted{}, ctx.Err()
	}
}

func (f *forwarder) run() {
	var carry *forward
	for {
		first := carry
		if first == nil {
			first = <-f.queue
		}
		f.slots <- struct{}{}
		group := []*forward{first}
		n, bytes := len(first.cmds), first.bytes
		carry = nil
	collect:
		for {
			select {
			case fw := <-f.queue:
				if n+len(fw.cmds) > forwardCommandsMax || bytes+fw.bytes > forwardBytesMax {
					carry = fw
					break collect
				}
				group, n, bytes = append(group, fw), n+len(fw.cmds), bytes+fw.bytes
			default:
				break collect
			}
		}
		go func() {
			defer func() { <-f.slots }()
			f.send(group, n)
		}()
	}
}

// send makes one call for the group and hands each member its outcomes.
func (f *forwarder) send(group []*forward, n int) {
	all := make([]engine.Command, 0, n)
	for _, fw := range group {
		all = append(all, fw.cmds...)
		f.s.cfg.stage(StageForwardWait, fw.queued)
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.s.cfg.WriteTimeout+time.Second)
	defer cancel()
	called := time.Now()
	res, err := f.s.submitRemote(ctx, all)
	f.s.cfg.stage(StageForwardCall, called)
	off := 0
	for _, fw := range group {
		if err == nil {
			fw.res = submitted{index: res.index, outcomes: res.outcomes[off : off+len(fw.cmds)]}
		}
		fw.err = err
		off += len(fw.cmds)
		close(fw.done)
	}
}

// commandBytes bounds the JSON size of cmds from above.
func commandBytes(cmds []engine.Command) int {
	n := 0
	for i := range cmds {
		c := &cmds[i]
		n += 96 + len(c.Key) + len(c.Account) + len(c.To) + 6*len(c.Name)
	}
	return n
}
