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

	c, err := New([]string{dead.URL, busy.URL, good.URL})
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
	c, _ := New([]string{reject.URL})
	_, err := c.Do(context.Background(), "POST", "/x", struct{}{}, "k", nil)
	var p *wire.Problem
	if !errors.As(err, &p) || p.Code != "insufficient_funds" || calls.Load() != 1 {
		t.Fatalf("got %v after %d calls", err, calls.Load())
	}

	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	c, _ = New([]string{dead.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.Do(ctx, "GET", "/v1/cluster", nil, "", nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("dead cluster: %v", err)
	}
}
