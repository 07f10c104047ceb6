package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/zkbank/zkbank/cmd/internal/wire"
)

// Feed is what Events follows: the change feed after From ("" for the
// beginning, "now" for what is applied next), only Account's events when
// set, and with Follow on past what the node holds.
type Feed struct {
	From    string
	Account string
	Follow  bool
	// Idle is how long a feed may stay silent (no event, no heartbeat)
	// before it counts as broken; default 30 s, three of a node's
	// heartbeats.
	Idle time.Duration
	// Reconnected, if set, hears each time the feed resumes on a node,
	// and why the last one ended.
	Reconnected func(endpoint, cursor string, why error)
}

// Events calls fn with every event of the feed, in log order, each once:
// when a node's feed breaks off or ends (the node stops, or finds the
// consumer too slow), it resumes after the last event fn took, on the
// next endpoint. Without Follow it returns once a node ran out of events.
// It returns fn's error, ctx's, or a problem no endpoint gets past (a
// cursor older than every node's history: history_gone).
func (c *Client) Events(ctx context.Context, f Feed, fn func(wire.Event) error) error {
	if f.Idle <= 0 {
		f.Idle = 30 * time.Second
	}
	cursor := f.From
	var last error
	gone := 0 // endpoints in a row that no longer hold the cursor
	backoff := 50 * time.Millisecond
	for try := 0; ; try++ {
		ep := c.endpoints[(int(c.next.Load())+try)%len(c.endpoints)]
		if try > 0 && f.Reconnected != nil {
			f.Reconnected(ep, cursor, last)
		}
		took, err := c.follow(ctx, ep, f, &cursor, fn)
		var p *wire.Problem
		var stop *stopped
		switch {
		case errors.As(err, &stop):
			return stop.err
		case err == nil && !f.Follow:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &p) && p.Code == wire.CodeHistoryGone:
			if gone++; gone == len(c.endpoints) {
				return p
			}
		case errors.As(err, &p) && !p.Retryable && p.Code != wire.CodeTooSlow && p.Code != wire.CodeStopping:
			return p
		default:
			gone = 0
		}
		last = err
		if took > 0 {
			backoff = 50 * time.Millisecond
		}
		select {
		case <-time.After(backoff):
			backoff = min(2*backoff, time.Second)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stopped carries fn's error out of follow, apart from the feed's own.
type stopped struct{ err error }

func (s *stopped) Error() string { return s.err.Error() }

// follow reads one node's feed, moving cursor past each event fn took;
// it returns how many it took and why the feed ended (nil: it ran out).
func (c *Client) follow(ctx context.Context, ep string, f Feed, cursor *string, fn func(wire.Event) error) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	q := url.Values{"follow": {fmt.Sprint(f.Follow)}}
	if *cursor != "" {
		q.Set("from", *cursor)
	}
	if f.Account != "" {
		q.Set("account", f.Account)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep+"/v1/events?"+q.Encode(), nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", wire.ContentNDJSON)
	c.authorize(req)
	idle := time.AfterFunc(f.Idle, cancel)
	defer idle.Stop()
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", ep, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return 0, problemOf(ep, resp.Status, data)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	took := 0
	for sc.Scan() {
		idle.Reset(f.Idle)
		line := sc.Bytes()
		switch {
		case bytes.HasPrefix(line, []byte(`{"heartbeat":`)):
			var hb wire.Heartbeat // the feed's cursor: past what it skipped, and a start for from=now
			if err := json.Unmarshal(line, &hb); err != nil || hb.Cursor == "" {
				return took, fmt.Errorf("%s: a heartbeat line: %q (%v)", ep, line, err)
			}
			*cursor = hb.Cursor
			continue
		case bytes.HasPrefix(line, []byte(`{"end":`)):
			var end wire.FeedEnd
			if err := json.Unmarshal(line, &end); err != nil {
				return took, fmt.Errorf("%s: the feed's last line: %w", ep, err)
			}
			return took, wire.NewProblem(end.End, fmt.Sprintf("%s: %s", ep, end.Detail))
		}
		var ev wire.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return took, fmt.Errorf("%s: a feed line: %w", ep, err)
		}
		if err := fn(ev); err != nil {
			return took, &stopped{err}
		}
		*cursor = ev.Cursor
		took++
	}
	if err := sc.Err(); err != nil {
		return took, fmt.Errorf("%s: the feed broke off after %d events: %w", ep, took, err)
	}
	if f.Follow {
		return took, fmt.Errorf("%s: the feed ended without a last line after %d events", ep, took)
	}
	return took, nil
}

// problemOf is the error of an answer that is not a success: its
// problem, or its status.
func problemOf(ep, status string, data []byte) error {
	var p wire.Problem
	if json.Unmarshal(data, &p) != nil || p.Code == "" {
		return fmt.Errorf("%s: HTTP %s", ep, status)
	}
	return &p
}
