// Package client talks to a zkbank cluster over its HTTP API, failing over
// between endpoints. Writes carry an idempotency key that stays the same
// across retries, so a retry never applies twice; a write whose outcome
// could not be learned says so (ErrOutcomeUnknown) with the key to retry
// with.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/zkbank/zkbank/cmd/internal/wire"
)

// Errors of Do, besides the bank's own problems (*wire.Problem).
var (
	// ErrUnavailable: no endpoint gave an answer in time, and none of
	// the tries can have been applied.
	ErrUnavailable = errors.New("cluster unavailable")
	// ErrOutcomeUnknown: a write reached a node but no answer said what
	// became of it: it may have been applied. Retry with the same key to
	// learn the outcome (it will not apply twice).
	ErrOutcomeUnknown = errors.New("outcome unknown")
)

// DefaultAttemptTimeout bounds one try at one endpoint, so that a hung
// node cannot hold up the failover to the others.
const DefaultAttemptTimeout = 5 * time.Second

// Client sends requests to the first endpoint that answers.
type Client struct {
	endpoints []string
	http      *http.Client
	// AttemptTimeout bounds each try (default DefaultAttemptTimeout).
	AttemptTimeout time.Duration
	// Waiting, if set, hears at most once a second why Do is still
	// trying and how long it has left.
	Waiting func(why string, left time.Duration)

	next atomic.Int64  // endpoint to try first; moves past ones that failed
	seen atomic.Uint64 // highest log index in any answer

	// Token is the bearer token sent with every request, if any.
	Token string
}

// New makes a client for endpoints (host:port or URLs). With a TLS
// configuration it speaks HTTPS (host:port means https://host:port);
// without one, plain HTTP, for a cluster run with bankd --insecure.
func New(endpoints []string, tlsCfg *tls.Config) (*Client, error) {
	c := &Client{http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, TLSClientConfig: tlsCfg}}, AttemptTimeout: DefaultAttemptTimeout}
	scheme := "http://"
	if tlsCfg != nil {
		scheme = "https://"
	}
	for _, e := range endpoints {
		e = strings.TrimRight(strings.TrimSpace(e), "/")
		if e == "" {
			continue
		}
		if !strings.Contains(e, "://") {
			e = scheme + e
		}
		c.endpoints = append(c.endpoints, e)
	}
	if len(c.endpoints) == 0 {
		return nil, errors.New("no endpoints given")
	}
	return c, nil
}

// Endpoints are the client's endpoints, as URLs.
func (c *Client) Endpoints() []string { return c.endpoints }

// GetJSON GETs one absolute URL (a node's own, not through the failover)
// within ctx and decodes the answer, whatever its status, into out.
func (c *Client) GetJSON(ctx context.Context, url string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	c.authorize(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return resp.StatusCode, fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return resp.StatusCode, nil
}

func (c *Client) authorize(req *http.Request) {
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
}

// NewKey makes a random idempotency key.
func NewKey() string {
	var b [18]byte
	rand.Read(b[:])
	return "ctl-" + base64.RawURLEncoding.EncodeToString(b[:])
}

// Response is a successful answer.
type Response struct {
	Endpoint string
	Index    string // X-Bank-Index
	Replayed bool
}

// Pending is the answer to a write above its principal's approval limit:
// not applied, it waits for a second principal (202).
type Pending struct {
	Approval wire.Approval
}

func (p *Pending) Error() string {
	return fmt.Sprintf("not applied: above the approval limit, it waits as approval %d for a second teller or an admin (bankctl approvals approve %d)", p.Approval.ID, p.Approval.ID)
}

// UnknownOutcome is the error of a write whose outcome is unknown; it
// wraps ErrOutcomeUnknown and carries the key to retry with.
type UnknownOutcome struct {
	Key  string
	Last error // what the last try saw
}

func (u *UnknownOutcome) Error() string {
	return fmt.Sprintf("%v: it may have been applied; retry with --key %s to learn the outcome (it will not apply twice). Last try: %v", ErrOutcomeUnknown, u.Key, u.Last)
}

func (u *UnknownOutcome) Unwrap() error { return ErrOutcomeUnknown }

// Do sends a request and decodes a 2xx answer into out. A problem answer
// that is not retryable comes back as *wire.Problem. Transport failures
// and retryable problems move on to the next endpoint, each try within
// AttemptTimeout, until ctx ends: then the error is *UnknownOutcome when
// some try of a write may have been applied, else it wraps
// ErrUnavailable. When every endpoint refuses the connection, Do fails at
// once. key, when set, is sent as the Idempotency-Key on every try.
func (c *Client) Do(ctx context.Context, method, path string, in any, key string, out any) (Response, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return Response{}, err
		}
	}
	path = c.readYourWrites(method, path)
	var last error
	var delivered, refused bool // some try may have been applied; every try of this round was refused
	backoff, lastWait := 50*time.Millisecond, time.Time{}
	for try := 0; ; try++ {
		round := try % len(c.endpoints)
		if round == 0 {
			refused = true
		}
		first := int(c.next.Load())
		ep := c.endpoints[(first+try)%len(c.endpoints)]
		resp, t, err := c.once(ctx, ep, method, path, body, key, out)
		if err == nil {
			c.next.Store(int64((first + try) % len(c.endpoints)))
			return resp, nil
		}
		var p *wire.Problem
		var pending *Pending
		if errors.As(err, &p) && !p.Retryable || errors.As(err, &pending) {
			return resp, err
		}
		last = err
		delivered = delivered || (method != http.MethodGet && t.mayHaveApplied(err))
		refused = refused && t.refused
		if round == len(c.endpoints)-1 {
			if refused && !delivered {
				return Response{}, fmt.Errorf("%w: every endpoint refused the connection (%w)", ErrUnavailable, last)
			}
			lastWait = c.wait(ctx, last, lastWait)
			select { // every endpoint failed once: give the cluster a moment
			case <-time.After(backoff):
				backoff = min(2*backoff, time.Second)
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			if delivered {
				return Response{}, &UnknownOutcome{Key: key, Last: last}
			}
			return Response{}, fmt.Errorf("%w: %w", ErrUnavailable, last)
		}
	}
}

// wait tells Waiting, at most once a second, why Do goes on trying.
func (c *Client) wait(ctx context.Context, last error, said time.Time) time.Time {
	if c.Waiting == nil || time.Since(said) < time.Second {
		return said
	}
	left := time.Duration(0)
	if d, ok := ctx.Deadline(); ok {
		left = time.Until(d).Round(time.Second)
	}
	if left <= 0 {
		return said // giving up now: the error says why
	}
	why := "waiting for the cluster"
	var p *wire.Problem
	if errors.As(last, &p) && p.Code == wire.CodeNoLeader {
		why = "waiting for a leader"
	}
	c.Waiting(fmt.Sprintf("%s (%v)", why, last), left)
	return time.Now()
}

// readYourWrites makes a read wait on whichever node answers until it
// applied what this client saw.
func (c *Client) readYourWrites(method, path string) string {
	seen := c.seen.Load()
	if method != http.MethodGet || seen == 0 || strings.Contains(path, "min_index=") {
		return path
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + fmt.Sprintf("%smin_index=%d", sep, seen)
}

// try is what one attempt got to: whether its request was written out,
// and whether the connection was refused.
type try struct {
	wrote   bool
	refused bool
}

// mayHaveApplied: a request that was written out and got no answer, or
// an answer that says the outcome is unknown.
func (t try) mayHaveApplied(err error) bool {
	var p *wire.Problem
	if errors.As(err, &p) {
		return p.Code == wire.CodeOutcomeUnknown
	}
	return t.wrote
}

func (c *Client) once(ctx context.Context, ep, method, path string, body []byte, key string, out any) (Response, try, error) {
	var wrote atomic.Bool // set by the transport's writer, which may run on after Do returns
	resp, t, err := c.attempt(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	}), ep, method, path, body, key, out)
	t.wrote = wrote.Load()
	return resp, t, err
}

func (c *Client) attempt(ctx context.Context, ep, method, path string, body []byte, key string, out any) (Response, try, error) {
	var t try
	ctx, cancel := context.WithTimeout(ctx, c.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, ep+path, bytes.NewReader(body))
	if err != nil {
		return Response{}, t, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set(wire.HeaderIdempotencyKey, key)
	}
	req.Header.Set(wire.HeaderTimeout, strconv.FormatInt(answerWithin(ctx).Milliseconds(), 10))
	c.authorize(req)
	resp, err := c.http.Do(req)
	if err != nil {
		t.refused = errors.Is(err, syscall.ECONNREFUSED)
		return Response{}, t, fmt.Errorf("%s: %w", ep, err)
	}
	defer resp.Body.Close()
	r := Response{Endpoint: ep, Index: resp.Header.Get(wire.HeaderIndex), Replayed: resp.Header.Get(wire.HeaderReplayed) == "true"}
	if d, ok := out.(*Download); ok && resp.StatusCode == http.StatusOK {
		return r, t, d.receive(ep, resp)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, t, fmt.Errorf("%s: %w", ep, err)
	}
	c.noteIndex(r.Index)
	if resp.StatusCode == http.StatusAccepted {
		var p wire.Pending
		if json.Unmarshal(data, &p) != nil || p.Approval.Status == "" {
			return r, t, fmt.Errorf("%s: HTTP %s without an approval", ep, resp.Status)
		}
		return r, t, &Pending{Approval: p.Approval}
	}
	if resp.StatusCode >= 300 {
		return r, t, problemOf(ep, resp.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return r, t, fmt.Errorf("%s: decode answer: %w", ep, err)
		}
	}
	return r, t, nil
}

// A Download, as Do's out, takes a 200 answer's body into File instead
// of decoding it; each try starts the file again. Once the body has
// begun, a failure is final: a file is not sent twice.
type Download struct {
	File        *os.File
	ContentType string // the type the answer must have
	Bytes       int64
	// Progress, when set, hears how much arrived of how much (-1: not
	// said), every 64 KiB or so.
	Progress func(done, total int64)
}

func (d *Download) receive(ep string, resp *http.Response) error {
	if got := resp.Header.Get("Content-Type"); got != d.ContentType {
		return &wire.Problem{Code: wire.CodeInternal, Detail: fmt.Sprintf("%s answered %q, not %q", ep, got, d.ContentType)}
	}
	if err := d.File.Truncate(0); err != nil {
		return err
	}
	if _, err := d.File.Seek(0, io.SeekStart); err != nil {
		return err
	}
	var body io.Reader = resp.Body
	if d.Progress != nil {
		body = &counting{r: resp.Body, total: resp.ContentLength, tell: d.Progress}
	}
	n, err := io.Copy(d.File, body)
	d.Bytes = n
	if err != nil {
		return &wire.Problem{Code: wire.CodeInternal, Detail: fmt.Sprintf("the download from %s broke off after %d bytes: %v", ep, n, err)}
	}
	return nil
}

// counting tells how much of a body was read.
type counting struct {
	r     io.Reader
	done  int64
	total int64
	tell  func(done, total int64)
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.done += int64(n)
	c.tell(c.done, c.total)
	return n, err
}

// answerWithin is how long the node has to answer a try: what is left of
// its deadline, less a margin for the answer to travel back.
func answerWithin(ctx context.Context) time.Duration {
	d, ok := ctx.Deadline()
	if !ok {
		return DefaultAttemptTimeout
	}
	left := time.Until(d)
	return max(left-left/10-100*time.Millisecond, 10*time.Millisecond)
}

// noteIndex remembers the highest index seen, for read-your-writes.
func (c *Client) noteIndex(s string) {
	i, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return
	}
	for {
		cur := c.seen.Load()
		if i <= cur || c.seen.CompareAndSwap(cur, i) {
			return
		}
	}
}
