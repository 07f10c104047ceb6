// Package client talks to a zkbank cluster over its HTTP API, failing over
// between endpoints. Writes carry an idempotency key that stays the same
// across retries, so a retry never applies twice.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/zkbank/zkbank/cmd/internal/wire"
)

// ErrUnavailable: no endpoint gave an answer in time.
var ErrUnavailable = errors.New("cluster unavailable")

// Client sends requests to the first endpoint that answers.
type Client struct {
	endpoints []string
	http      *http.Client
	next      atomic.Int64  // endpoint to try first; moves past ones that failed
	seen      atomic.Uint64 // highest log index in any answer
}

// New makes a client for endpoints (host:port or URLs).
func New(endpoints []string) (*Client, error) {
	c := &Client{http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	for _, e := range endpoints {
		e = strings.TrimRight(strings.TrimSpace(e), "/")
		if e == "" {
			continue
		}
		if !strings.Contains(e, "://") {
			e = "http://" + e
		}
		c.endpoints = append(c.endpoints, e)
	}
	if len(c.endpoints) == 0 {
		return nil, errors.New("no endpoints given")
	}
	return c, nil
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

// Do sends a request and decodes a 2xx answer into out. A problem answer
// that is not retryable comes back as *wire.Problem. Transport failures
// and retryable problems move on to the next endpoint until ctx ends; then
// the error wraps ErrUnavailable. key, when set, is sent as the
// Idempotency-Key on every try.
func (c *Client) Do(ctx context.Context, method, path string, in any, key string, out any) (Response, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return Response{}, err
		}
	}
	if seen := c.seen.Load(); method == http.MethodGet && seen > 0 && !strings.Contains(path, "min_index=") {
		// Read your writes: whichever node answers has applied what this
		// client saw.
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += fmt.Sprintf("%smin_index=%d", sep, seen)
	}
	var last error
	backoff := 50 * time.Millisecond
	for try := 0; ; try++ {
		first := int(c.next.Load())
		ep := c.endpoints[(first+try)%len(c.endpoints)]
		resp, err := c.once(ctx, ep, method, path, body, key, out)
		if err == nil {
			c.next.Store(int64((first + try) % len(c.endpoints)))
			return resp, nil
		}
		var p *wire.Problem
		if errors.As(err, &p) && !p.Retryable {
			return resp, err
		}
		last = err
		if try%len(c.endpoints) == len(c.endpoints)-1 {
			select { // every endpoint failed once: give the cluster a moment
			case <-time.After(backoff):
				backoff = min(2*backoff, time.Second)
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			return Response{}, fmt.Errorf("%w: %w", ErrUnavailable, last)
		}
	}
}

func (c *Client) once(ctx context.Context, ep, method, path string, body []byte, key string, out any) (Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, ep+path, bytes.NewReader(body))
	if err != nil {
		return Response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set(wire.HeaderIdempotencyKey, key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("%s: %w", ep, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("%s: %w", ep, err)
	}
	r := Response{Endpoint: ep, Index: resp.Header.Get(wire.HeaderIndex), Replayed: resp.Header.Get(wire.HeaderReplayed) == "true"}
	c.noteIndex(r.Index)
	if resp.StatusCode >= 300 {
		var p wire.Problem
		if json.Unmarshal(data, &p) != nil || p.Code == "" {
			return r, fmt.Errorf("%s: HTTP %s", ep, resp.Status)
		}
		return r, &p
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return r, fmt.Errorf("%s: decode answer: %w", ep, err)
		}
	}
	return r, nil
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
