// Package api is bankd's HTTP face: the v1 API (accounts, transfers,
// batches, cluster, digest, health, metrics), with the internal endpoints
// of package peer mounted under /internal/. Errors are RFC 9457 problems
// with a stable code; bad input never reaches the log.
package api

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/internal/wire"
)

// Config configures the API.
type Config struct {
	WriteTimeout time.Duration // how long a write or a linearizable read may wait for a leader (default 10s)
	ReadTimeout  time.Duration // how long a read may wait for min_index (default 5s)
	BodyBytesMax int64         // request body limit (default 1 MiB)
	BatchMax     int           // commands per batch request (default 1000)
	ListLimitMax int           // accounts per page (default 1000)
	Internal     http.Handler  // serves /internal/ (peer.Handler); nil for none
	// Insecure lets every request through unauthenticated (bankd
	// --insecure); /v1/cluster says so.
	Insecure      bool
	MetricsHandle http.Handler // serves /metrics; nil for none
	Observe       func(route string, status int, took time.Duration)
	// RateLimit is how many requests a second one principal may send to
	// this node (as many at once); 0: no limit.
	RateLimit int
	// Logger takes the refusals and admin actions (nil: none); Count
	// counts them by kind ("refused", "admin") and code or action.
	Logger *slog.Logger
	Count  func(kind, what string)
	// Feed bounds the change feeds; zero fields take DefaultFeedConfig's.
	Feed FeedConfig
}

// DefaultConfig is the API's configuration unless told otherwise; bankd's
// flags take their defaults from it.
func DefaultConfig() Config {
	return Config{WriteTimeout: 10 * time.Second, ReadTimeout: 5 * time.Second, BodyBytesMax: 1 << 20, BatchMax: 1000, ListLimitMax: 1000, RateLimit: 1000}
}

// Server serves the API of one node.
type Server struct {
	cfg    Config
	node   *node.Node
	mux    *http.ServeMux
	limits limiter
	events *events
	// feedsEnd is closed when the server shuts down (EndFeeds): the feeds
	// end with a last line, so that http.Server.Shutdown need not wait.
	feedsEnd chan struct{}
	endOnce  sync.Once
}

// EndFeeds ends every change feed (http.Server.RegisterOnShutdown).
func (s *Server) EndFeeds() { s.endOnce.Do(func() { close(s.feedsEnd) }) }

// New builds the API for n.
func New(n *node.Node, cfg Config) *Server {
	def := DefaultConfig()
	setDefault(&cfg.WriteTimeout, def.WriteTimeout)
	setDefault(&cfg.ReadTimeout, def.ReadTimeout)
	setDefault(&cfg.BodyBytesMax, def.BodyBytesMax)
	setDefault(&cfg.BatchMax, def.BatchMax)
	setDefault(&cfg.ListLimitMax, def.ListLimitMax)
	fd := DefaultFeedConfig()
	setDefault(&cfg.Feed.LagMax, fd.LagMax)
	setDefault(&cfg.Feed.CheckEvery, fd.CheckEvery)
	setDefault(&cfg.Feed.WriteTimeout, fd.WriteTimeout)
	setDefault(&cfg.Feed.Chunk, fd.Chunk)
	s := &Server{cfg: cfg, node: n, mux: http.NewServeMux(), limits: newLimiter(cfg.RateLimit), events: newEvents(cfg.Logger, cfg.Count),
		feedsEnd: make(chan struct{})}
	s.routes()
	return s
}

func (s *Server) routes() {
	h := map[string]http.HandlerFunc{
		"POST /v1/accounts":                    s.createAccount,
		"GET /v1/accounts":                     s.listAccounts,
		"GET /v1/accounts/{account}":           s.getAccount,
		"DELETE /v1/accounts/{account}":        s.deleteAccount,
		"POST /v1/accounts/{account}/deposit":  s.deposit,
		"POST /v1/accounts/{account}/withdraw": s.withdraw,
		"POST /v1/accounts/{account}/rename":   s.rename,
		"POST /v1/accounts/{account}/freeze":   s.freeze,
		"POST /v1/accounts/{account}/unfreeze": s.unfreeze,
		"GET /v1/accounts/{account}/holds":     s.listHolds,
		"GET /v1/accounts/{account}/history":   s.accountHistory,
		"GET /v1/events":                       s.feedEvents,
		"POST /v1/holds":                       s.createHold,
		"GET /v1/holds/{id}":                   s.getHold,
		"POST /v1/holds/{id}/capture":          s.captureHold,
		"POST /v1/holds/{id}/void":             s.voidHold,
		"GET /v1/approvals":                    s.listApprovals,
		"GET /v1/approvals/{id}":               s.getApproval,
		"POST /v1/approvals/{id}/approve":      s.approve,
		"POST /v1/approvals/{id}/reject":       s.rejectOne,
		"POST /v1/admin/approval-limits":       s.setApprovalLimit,
		"GET /v1/admin/approval-limits":        s.approvalLimits,
		"POST /v1/transfers":                   s.transfer,
		"POST /v1/batch":                       s.batch,
		"GET /v1/cluster":                      s.cluster,
		"GET /v1/digest":                       s.digest,
		"POST /v1/admin/revocations":           s.revoke,
		"GET /v1/admin/revocations":            s.revocations,
		"DELETE /v1/admin/members/{id}":        s.removeMember,
		"POST /v1/admin/backup":                s.backup,
		"POST /v1/admin/tokens":                s.createToken,
		"GET /v1/admin/tokens":                 s.listTokens,
		"DELETE /v1/admin/tokens/{id}":         s.revokeToken,
		"GET /livez":                           s.livez,
		"GET /readyz":                          s.readyz,
	}
	paths := map[string]bool{}
	for pattern, fn := range h {
		s.mux.HandleFunc(pattern, fn)
		paths[pattern[strings.IndexByte(pattern, ' ')+1:]] = true
	}
	for p := range paths {
		s.mux.HandleFunc(p, methodNotAllowed)
	}
	if s.cfg.Internal != nil {
		s.mux.Handle("/internal/", s.cfg.Internal)
	}
	if s.cfg.MetricsHandle != nil {
		s.mux.Handle("GET /metrics", s.cfg.MetricsHandle)
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, wire.NewProblem(wire.CodeNotFound, "no route "+r.Method+" "+r.URL.Path))
	})
}

// methodNotAllowed catches the methods a path does not take (a pattern
// with a method wins over the same path without one).
func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, wire.NewProblem(wire.CodeMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path))
}

// ServeHTTP serves the API to the callers its guard lets through,
// reporting each request to Observe.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Observe == nil {
		if r, ok := s.guard(w, r); ok {
			s.mux.ServeHTTP(w, r)
		}
		return
	}
	started := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	r, ok := s.guard(sw, r)
	if ok {
		s.mux.ServeHTTP(sw, r)
	}
	route := r.Pattern
	if route == "" || route == "/" {
		route = "other"
	}
	s.cfg.Observe(route, sw.status, time.Since(started))
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func setDefault[T int | int64 | uint64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
