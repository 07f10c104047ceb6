// Package api is bankd's HTTP face: the v1 API of DESIGN.md (accounts,
// transfers, batches, cluster, digest, health, metrics) and the internal
// endpoints nodes call on each other (submit to the leader, linearizable
// read index, snapshot download). Errors are RFC 9457 problems with a
// stable code; bad input never reaches the log.
package api

import (
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/bankd/internal/rounds"
	"github.com/zkbank/zkbank/cmd/internal/wire"
)

// Config configures the API.
type Config struct {
	WriteTimeout  time.Duration // how long a write or a linearizable read may wait for a leader (default 10s)
	ReadTimeout   time.Duration // how long a read may wait for min_index (default 5s)
	BodyBytesMax  int64         // request body limit (default 1 MiB)
	BatchMax      int           // commands per batch request (default 1000)
	ListLimitMax  int           // accounts per page (default 1000)
	PeerClient    *http.Client  // for calls to other nodes
	MetricsHandle http.Handler  // serves /metrics; nil for none
	Observe       func(route string, status int, took time.Duration)
	// Stage reports the follower's forwarding stages: StageForwardWait
	// (queued behind earlier forwards) and StageForwardCall (the call to
	// the leader). Nil for none.
	Stage func(stage string, took time.Duration)
}

// Stages reported to Config.Stage.
const (
	StageForwardWait = "forward_wait"
	StageForwardCall = "forward_call"
)

func (c Config) stage(stage string, started time.Time) {
	if c.Stage != nil {
		c.Stage(stage, time.Since(started))
	}
}

// Server serves the API of one node.
type Server struct {
	cfg   Config
	node  *node.Node
	peers *http.Client
	mux   *http.ServeMux
	fwd   *forwarder
	// leaderReads shares a follower's calls for read indexes (readIndex).
	leaderReads *rounds.Runner[uint64]
}

// New builds the API for n.
func New(n *node.Node, cfg Config) *Server {
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 5 * time.Second
	}
	if cfg.BodyBytesMax <= 0 {
		cfg.BodyBytesMax = 1 << 20
	}
	if cfg.BatchMax <= 0 {
		cfg.BatchMax = 1000
	}
	if cfg.ListLimitMax <= 0 {
		cfg.ListLimitMax = 1000
	}
	if cfg.PeerClient == nil {
		cfg.PeerClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	}
	s := &Server{cfg: cfg, node: n, peers: cfg.PeerClient, mux: http.NewServeMux()}
	s.fwd = newForwarder(s)
	s.leaderReads = rounds.New(s.askLeader)
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
		"POST /v1/transfers":                   s.transfer,
		"POST /v1/batch":                       s.batch,
		"GET /v1/cluster":                      s.cluster,
		"GET /v1/digest":                       s.digest,
		"GET /livez":                           s.livez,
		"GET /readyz":                          s.readyz,
		"POST " + submitPath:                   s.internalSubmit,
		"POST " + submitPeerPath:               s.internalSubmitPeer,
		"POST " + readIndexPath:                s.internalReadIndex,
		"GET " + node.SnapshotPath:             s.internalSnapshot,
		"GET " + node.EntriesPath:              s.node.ServeEntries,
	}
	paths := map[string]bool{}
	for pattern, fn := range h {
		s.mux.HandleFunc(pattern, fn)
		paths[pattern[strings.IndexByte(pattern, ' ')+1:]] = true
	}
	for p := range paths {
		s.mux.HandleFunc(p, methodNotAllowed)
	}
	if s.cfg.MetricsHandle != nil {
		s.mux.Handle("GET /metrics", s.cfg.MetricsHandle)
	}
	s.mux.HandleFunc("GET /debug/pprof/", pprof.Index) // profiles, for finding where time goes
	s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, wire.NewProblem(wire.CodeNotFound, "no route "+r.Method+" "+r.URL.Path))
	})
}

// methodNotAllowed catches the methods a path does not take (a pattern
// with a method wins over the same path without one).
func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, wire.NewProblem(wire.CodeMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path))
}

// ServeHTTP serves the API, reporting each request to Observe.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Observe == nil {
		s.mux.ServeHTTP(w, r)
		return
	}
	started := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	s.mux.ServeHTTP(sw, r)
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
