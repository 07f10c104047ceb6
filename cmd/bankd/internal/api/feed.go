package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/history"
)

// FeedConfig bounds the change feeds (GET /v1/events). A feed reads the
// history on disk at its consumer's pace, so the replica loop never waits
// for it; a consumer that falls behind for good is cut off.
type FeedConfig struct {
	// LagMax is how many entries a following consumer may be behind the
	// node: past it, and no nearer than at the previous check, the feed
	// ends with too_slow.
	LagMax uint64
	// CheckEvery is how often a feed checks its lag and, when it has had
	// nothing to send, sends a heartbeat.
	CheckEvery time.Duration
	// WriteTimeout is how long one write to the consumer may take.
	WriteTimeout time.Duration
	// Chunk is how many events a feed reads with one iterator (an open
	// iterator holds on to the store's files).
	Chunk int
}

// DefaultFeedConfig: ten thousand entries (up to ten million commands)
// behind, checked every ten seconds.
func DefaultFeedConfig() FeedConfig {
	return FeedConfig{LagMax: 10_000, CheckEvery: 10 * time.Second, WriteTimeout: 10 * time.Second, Chunk: 1000}
}

// feed is one consumer's stream of events.
type feed struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	sse     bool
	cfg     FeedConfig
	after   history.Cursor // the last event read (or the consumer's from)
	caught  uint64         // the node's last index when the feed last ran out of events
	follow  bool
	check   time.Time     // when lagging looks next
	lag     uint64        // entries behind at the last look
	cut     *wire.Problem // too_slow or stopping, once the feed must end
	ending  <-chan struct{}
	account string // only this account's events; "" for all
	may     func(account string) bool
	visible func(ev *history.Event) bool
	started bool // the answer's header went out
}

// feedEvents streams every command this node applied after the consumer's
// cursor, as NDJSON or, for Accept: text/event-stream, as server-sent
// events; with follow=true it goes on with each entry as it is applied.
func (s *Server) feedEvents(w http.ResponseWriter, r *http.Request) {
	f, follow, p := s.newFeed(w, r)
	if p == nil {
		p = s.consistent(r)
	}
	if p != nil && p.Code == wire.CodeForbidden {
		s.refused(w, r, callerOf(r), p)
		return
	}
	if p != nil {
		writeProblem(w, p)
		return
	}
	end := f.run(r.Context(), s.node, s.feedsEnd, follow)
	if end != nil && !f.started && end.Code != wire.CodeTooSlow && end.Code != wire.CodeStopping {
		writeProblem(w, end) // nothing went out yet: a plain answer (410 history_gone)
		return
	}
	if end != nil {
		f.end(end)
	}
}

// newFeed reads a feed's parameters: from (a cursor, or "now"; the SSE
// Last-Event-ID when absent), account, follow.
func (s *Server) newFeed(w http.ResponseWriter, r *http.Request) (*feed, bool, *wire.Problem) {
	q, c := r.URL.Query(), callerOf(r)
	f := &feed{w: w, rc: http.NewResponseController(w), cfg: s.cfg.Feed, account: q.Get("account"),
		sse: strings.Contains(r.Header.Get("Accept"), wire.ContentEventStream), may: c.mayRead}
	from := q.Get("from")
	if from == "" {
		from = r.Header.Get("Last-Event-ID")
	}
	var p *wire.Problem
	if from == "now" {
		f.after = history.EndOf(s.node.History().Through())
	} else if f.after, p = cursorParam(from, "from"); p != nil {
		return nil, false, p
	}
	follow := q.Get("follow")
	if follow != "" && follow != "true" && follow != "false" {
		return nil, false, wire.NewProblem(wire.CodeInvalidParameter, fmt.Sprintf("follow %q: use true or false", follow))
	}
	switch {
	case f.account != "" && !engine.ValidAccountNumber(f.account):
		return nil, false, wire.NewProblem(wire.CodeInvalidParameter, fmt.Sprintf("account %q is not an account number", f.account))
	case f.account != "" && !c.mayRead(f.account):
		return nil, false, wire.NewProblem(wire.CodeForbidden, fmt.Sprintf("%s (customer) may read only its own accounts", c.name))
	case f.account == "" && c.role == engine.RoleCustomer && len(c.accounts) == 1:
		f.account = c.accounts[0] // its one account's index, not every event
	}
	f.visible = func(ev *history.Event) bool { return true }
	if c.role == engine.RoleCustomer && f.account == "" {
		f.visible = func(ev *history.Event) bool {
			for _, a := range ev.Touches() {
				if c.mayRead(a) {
					return true
				}
			}
			return false
		}
	}
	return f, follow == "true", nil
}

// run sends events until the consumer has all (without follow) or goes,
// the node stops, or the feed must end: it returns the problem it ends
// with, nil when it just ran out.
func (f *feed) run(ctx context.Context, n *node.Node, ending <-chan struct{}, follow bool) *wire.Problem {
	h := n.History()
	f.follow, f.check, f.ending = follow, time.Now().Add(f.cfg.CheckEvery), ending
	if follow && f.after.Index > 0 {
		// A first heartbeat names where the feed starts, so that a
		// consumer that asked from=now and got no event yet resumes
		// from there, not from its own "now".
		if err := h.Events(f.after, func(history.Event) bool { return false }); err != nil {
			return f.failed(err, h)
		}
		f.heartbeat()
	}
	for {
		through := h.Through()
		sent, err := f.chunk(h)
		if err != nil {
			return f.failed(err, h)
		}
		if f.cut != nil {
			return f.cut
		}
		if sent < f.cfg.Chunk {
			f.caught = through
		}
		f.start()
		if err := f.flush(); err != nil {
			return nil // the consumer is gone or stuck: nothing more reaches it
		}
		if sent == f.cfg.Chunk {
			continue
		}
		if !follow {
			return nil
		}
		if p := f.wait(ctx, n, ending); p != nil {
			return p
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// chunk sends up to Chunk events after the feed's cursor; the cursor
// moves past every event read, sent or not. It stops early when the
// consumer turns out too slow (cut).
func (f *feed) chunk(h *history.Store) (int, error) {
	sent := 0
	var werr error
	each := func(ev history.Event) bool {
		f.after = ev.Cursor
		sent++
		if f.visible(&ev) {
			werr = f.send(&ev)
		}
		f.cut = f.lagging(h)
		select {
		case <-f.ending: // a feed with much to send ends as soon as an idle one
			f.cut = stoppingProblem
		default:
		}
		return werr == nil && f.cut == nil && sent < f.cfg.Chunk
	}
	var err error
	if f.account != "" {
		err = h.Statement(f.account, f.after, each)
	} else {
		err = h.Events(f.after, each)
	}
	return sent, errors.Join(err, werr)
}

// lagging is too_slow once a check finds a following consumer more
// than LagMax entries behind, and no nearer than at the check before.
func (f *feed) lagging(h *history.Store) *wire.Problem {
	if !f.follow || time.Now().Before(f.check) {
		return nil
	}
	through := h.Through()
	lag := through - min(through, max(f.after.Index, f.caught))
	last := f.lag
	f.lag, f.check = lag, time.Now().Add(f.cfg.CheckEvery)
	if lag > f.cfg.LagMax && lag >= last {
		return wire.NewProblem(wire.CodeTooSlow, fmt.Sprintf("%d entries behind this node, and no nearer than %s before; resume from the cursor", lag, f.cfg.CheckEvery))
	}
	return nil
}

// wait returns once the node applied past the feed's cursor, the node
// or the feed ends, or a check is due (a keep-alive goes out then).
func (f *feed) wait(ctx context.Context, n *node.Node, ending <-chan struct{}) *wire.Problem {
	wctx, cancel := context.WithTimeout(ctx, f.cfg.CheckEvery)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.WaitApplied(wctx, n.History().Through()+1) }()
	select {
	case err := <-done:
		if errors.Is(err, node.ErrStopped) {
			return wire.NewProblem(wire.CodeStopping, "this node stopped; resume from the cursor on another")
		}
		if err != nil && ctx.Err() == nil {
			f.heartbeat()
		}
		return nil
	case <-ending:
		cancel()
		<-done
		return stoppingProblem
	}
}

func (f *feed) failed(err error, h *history.Store) *wire.Problem {
	if errors.Is(err, errWrite) {
		return nil
	}
	return historyProblem(err, h)
}

var stoppingProblem = wire.NewProblem(wire.CodeStopping, "this node is shutting down; resume from the cursor on another")

var errWrite = errors.New("api: the consumer does not take the feed")

// send writes one event.
func (f *feed) send(ev *history.Event) error {
	line, err := json.Marshal(wire.EventOf(ev, f.may))
	if err != nil {
		return err
	}
	if f.sse {
		return f.write(fmt.Appendf(nil, "id: %s\nevent: command\ndata: %s\n\n", ev.Cursor, line))
	}
	return f.write(append(line, '\n'))
}

// heartbeat tells an idle consumer, and the proxies between, that the
// feed is alive: an SSE comment, or an NDJSON line with the cursor.
func (f *feed) heartbeat() {
	if f.sse {
		f.write([]byte(": heartbeat\n\n"))
	} else {
		line, _ := json.Marshal(wire.Heartbeat{Heartbeat: wire.TimeOf(time.Now().UnixMilli()), Cursor: f.after.String()})
		f.write(append(line, '\n'))
	}
	f.flush()
}

// end writes the feed's last line: why it ended, and where to resume.
func (f *feed) end(p *wire.Problem) {
	line, _ := json.Marshal(wire.FeedEnd{End: p.Code, Detail: p.Detail, Cursor: f.after.String(), HistoryFrom: p.HistoryFrom})
	if f.sse {
		f.write(fmt.Appendf(nil, "event: end\ndata: %s\n\n", line))
	} else {
		f.write(append(line, '\n'))
	}
	f.flush()
}

// start sends the answer's header, once: before the first event, or once
// the feed found its cursor held.
func (f *feed) start() {
	if f.started {
		return
	}
	f.started = true
	ct := wire.ContentNDJSON
	if f.sse {
		ct = wire.ContentEventStream
	}
	f.w.Header().Set("Content-Type", ct)
	f.w.Header().Set("Cache-Control", "no-store")
	f.w.WriteHeader(http.StatusOK)
}

// write sends b within the write timeout.
func (f *feed) write(b []byte) error {
	f.start()
	f.rc.SetWriteDeadline(time.Now().Add(f.cfg.WriteTimeout))
	if _, err := f.w.Write(b); err != nil {
		return fmt.Errorf("%w: %v", errWrite, err)
	}
	return nil
}

func (f *feed) flush() error {
	f.rc.SetWriteDeadline(time.Now().Add(f.cfg.WriteTimeout))
	if err := f.rc.Flush(); err != nil {
		return fmt.Errorf("%w: %v", errWrite, err)
	}
	return nil
}
