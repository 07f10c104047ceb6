package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkbank/zkbank/cmd/internal/wire"
)

// TestFailsOverKeepingTheKey: a dead endpoint and one that answers a
// retryable problem are passed over, and every try carries the same key.
func TestFailsOverKeepingTheKey(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	var keys []string
	var calls atomic.Int32
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys = append(keys, r.Header.Get(wire.HeaderIdempotencyKey))
		w.Header().Set("Content-Type", wire.ContentProblem)
		w.WriteHeader(503)
		w.Write([]byte(`{"code":"no_leader","status":503,"retryable":true}`))
	}))
	defer busy.Close()
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		keys = append(keys, r.Header.Get(wire.HeaderIdempotencyKey))
		w.Header().Set(wire.HeaderIndex, "7")
		w.Write([]byte(`{"account":"1","balance":5}`))
	}))
	defer good.Close()

	c, err := New([]string{dead.URL, busy.URL, good.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var a wire.Account
	resp, err := c.Do(context.Background(), "POST", "/v1/accounts/1/deposit", wire.Amount{Amount: 5}, "k1", &a)
	if err != nil || a.Balance != 5 || resp.Index != "7" || resp.Endpoint != good.URL {
		t.Fatalf("got %+v %+v %v", resp, a, err)
	}
	if len(keys) != 2 || keys[0] != "k1" || keys[1] != "k1" {
		t.Fatalf("keys sent: %v", keys)
	}
	// The endpoint that answered is tried first next time.
	c.Do(context.Background(), "GET", "/v1/accounts/1", nil, "", &a)
	if calls.Load() != 2 || len(keys) != 3 {
		t.Fatalf("second call did not go straight to the good endpoint: %d calls, keys %v", calls.Load(), keys)
	}
}

func TestRejectionIsNotRetriedAndDeadClusterIsUnavailable(t *testing.T) {
	var calls atomic.Int32
	reject := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(409)
		w.Write([]byte(`{"code":"insufficient_funds","status":409}`))
	}))
	defer reject.Close()
	c, _ := New([]string{reject.URL}, nil)
	_, err := c.Do(context.Background(), "POST", "/x", struct{}{}, "k", nil)
	var p *wire.Problem
	if !errors.As(err, &p) || p.Code != "insufficient_funds" || calls.Load() != 1 {
		t.Fatalf("got %v after %d calls", err, calls.Load())
	}

	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	c, _ = New([]string{dead.URL}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.Do(ctx, "GET", "/v1/cluster", nil, "", nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("dead cluster: %v", err)
	}
}

// TestAHungEndpointCostsOneAttempt: a node that takes the request and
// never answers is passed over after AttemptTimeout; the node is told how
// long it has.
func TestAHungEndpointCostsOneAttempt(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer hung.Close()
	defer close(release)
	var told atomic.Value
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		told.Store(r.Header.Get(wire.HeaderTimeout))
		w.Write([]byte(`{}`))
	}))
	defer good.Close()
	c, _ := New([]string{hung.URL, good.URL}, nil)
	c.AttemptTimeout = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Do(ctx, "POST", "/x", struct{}{}, "k", nil); err != nil {
		t.Fatalf("the healthy endpoint was not reached: %v", err)
	}
	if ms, _ := told.Load().(string); ms == "" || ms == "0" {
		t.Fatalf("%s %q, want the try's deadline in ms", wire.HeaderTimeout, ms)
	}
}

// TestAWriteThatReachedAHungNodeHasAnUnknownOutcome: with no answer at
// all, a write that was sent may have applied: the error says so and
// carries the key; a read is simply unavailable.
func TestAWriteThatReachedAHungNodeHasAnUnknownOutcome(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer hung.Close()
	defer close(release)
	c, _ := New([]string{hung.URL}, nil)
	c.AttemptTimeout = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := c.Do(ctx, "POST", "/v1/accounts/1/deposit", wire.Amount{Amount: 1}, "k-77", nil)
	var u *UnknownOutcome
	if !errors.As(err, &u) || !errors.Is(err, ErrOutcomeUnknown) || u.Key != "k-77" {
		t.Fatalf("write to a hung node: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.Do(ctx, "GET", "/v1/accounts/1", nil, "", nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("read from a hung node: %v", err)
	}
}

// TestEveryEndpointRefusingFailsAtOnce: nothing listens, so nothing can
// have been applied: Do does not wait out its timeout.
func TestEveryEndpointRefusingFailsAtOnce(t *testing.T) {
	var urls []string
	for range 2 {
		s := httptest.NewServer(http.NotFoundHandler())
		urls = append(urls, s.URL)
		s.Close()
	}
	c, _ := New(urls, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := c.Do(ctx, "POST", "/x", struct{}{}, "k", nil)
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrOutcomeUnknown) || ctx.Err() != nil {
		t.Fatalf("every endpoint refused: %v (context %v)", err, ctx.Err())
	}
}
