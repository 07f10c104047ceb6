package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/zkbank/zkbank/cmd/internal/wire"
)

// TestExchangeClassifiesAnswers: a 404 means an older peer (fall back), a
// retryable problem or a garbled answer means retry, any other problem is
// final.
func TestExchangeClassifiesAnswers(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("body")) })
	mux.HandleFunc("/busy", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, wire.NewProblem(wire.CodeOverloaded, "busy"))
	})
	mux.HandleFunc("/bad", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, wire.NewProblem(wire.CodeInvalidOp, "bad"))
	})
	mux.HandleFunc("/garbled", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", http.StatusBadGateway) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, wire.NewProblem(wire.CodeNotFound, "no route"))
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()
	s := &Server{peers: ts.Client()}
	ctx := context.Background()

	if raw, err := s.exchange(ctx, "POST", ts.URL+"/ok", "x/y", nil); err != nil || string(raw) != "body" {
		t.Fatalf("ok: %q %v", raw, err)
	}
	if _, err := s.exchange(ctx, "POST", ts.URL+"/internal/v9/new", "x/y", nil); !errors.Is(err, errNoSuchPath) || !errors.Is(err, errRetry) {
		t.Fatalf("unknown path: %v, want errNoSuchPath (retryable)", err)
	}
	for _, path := range []string{"/busy", "/garbled"} {
		if _, err := s.exchange(ctx, "POST", ts.URL+path, "x/y", nil); !errors.Is(err, errRetry) || errors.Is(err, errNoSuchPath) {
			t.Fatalf("%s: %v, want errRetry", path, err)
		}
	}
	var p *wire.Problem
	if _, err := s.exchange(ctx, "POST", ts.URL+"/bad", "x/y", nil); !errors.As(err, &p) || errors.Is(err, errRetry) || p.Code != wire.CodeInvalidOp {
		t.Fatalf("bad: %v, want a final problem", err)
	}
}
