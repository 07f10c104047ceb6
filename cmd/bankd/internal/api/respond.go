package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if a, ok := v.(jsonAppender); ok { // the common answers, by hand
		w.Write(a.AppendJSON(make([]byte, 0, 512)))
		return
	}
	enc := json.NewEncoder(w)
	enc.Encode(v) // the client may be gone; nothing to do about it
}

// jsonAppender appends itself as encoding/json's Encoder writes it.
type jsonAppender interface{ AppendJSON([]byte) []byte }

func writeProblem(w http.ResponseWriter, p *wire.Problem) { wire.WriteProblem(w, p) }

// submitted is what the log made of a request.
type submitted struct {
	index    uint64
	outcomes []node.Outcome
}

// submit runs cmds through the leader within the write timeout (or the
// client's, when shorter: waitFor).
func (s *Server) submit(r *http.Request, cmds []engine.Command) (submitted, error) {
	ctx, cancel := contextFor(r, s.cfg.WriteTimeout)
	defer cancel()
	index, out, err := s.node.Write(ctx, cmds)
	return submitted{index, out}, err
}

// contextFor is r's context, ending after waitFor(r, limit).
func contextFor(r *http.Request, limit time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), waitFor(r, limit))
}

// waitFor is how long a request may wait: limit, or less when the client
// says in X-Bank-Timeout (milliseconds) that it waits less. A client that
// gives up on a try first cannot tell a write that was never applied from
// one that was; told its deadline, the node answers no_leader (not
// applied) or outcome_unknown in time.
func waitFor(r *http.Request, limit time.Duration) time.Duration {
	v := r.Header.Get(wire.HeaderTimeout)
	if v == "" {
		return limit
	}
	ms, err := strconv.ParseUint(v, 10, 32)
	if err != nil || ms == 0 {
		return limit
	}
	return min(limit, time.Duration(ms)*time.Millisecond)
}

func setIndex(w http.ResponseWriter, index uint64) {
	w.Header().Set(wire.HeaderIndex, strconv.FormatUint(index, 10))
}

// problemFor maps the errors of submitting and reading to problems.
func problemFor(err error) *wire.Problem {
	var p *wire.Problem
	switch {
	case errors.As(err, &p) && p.Code == wire.CodeNotLeader:
		return wire.NewProblem(wire.CodeNoLeader, "the leader changed and no new one answered in time; retry with the same Idempotency-Key")
	case errors.As(err, &p):
		return p
	case errors.Is(err, node.ErrTooLarge):
		return wire.NewProblem(wire.CodeBatchTooLarge, err.Error())
	case errors.Is(err, node.ErrOverloaded):
		return wire.NewProblem(wire.CodeOverloaded, "too many requests are waiting for the log; retry shortly")
	case errors.Is(err, node.ErrNoLeader), errors.Is(err, node.ErrNotLeader):
		return wire.NewProblem(wire.CodeNoLeader, "no leader answered in time ("+err.Error()+"); retry with the same Idempotency-Key")
	case errors.Is(err, node.ErrOutcomeUnknown), errors.Is(err, node.ErrLeadershipLost),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return wire.NewProblem(wire.CodeOutcomeUnknown, "the outcome is not known ("+err.Error()+"); retry with the same Idempotency-Key, it will not apply twice")
	case errors.Is(err, node.ErrLogTooOld):
		return wire.NewProblem(wire.CodeNotReady, err.Error()+"; retry shortly")
	case errors.Is(err, node.ErrNoMember):
		return wire.NewProblem(wire.CodeMemberNotFound, err.Error())
	case errors.Is(err, node.ErrMemberLive):
		return wire.NewProblem(wire.CodeMemberLive, err.Error())
	case errors.Is(err, node.ErrNoBackup):
		return wire.NewProblem(wire.CodeNoBackup, err.Error())
	case errors.Is(err, node.ErrStopped):
		return wire.NewProblem(wire.CodeNotReady, "this node is shutting down; use another")
	}
	return wire.NewProblem(wire.CodeInternal, err.Error())
}
