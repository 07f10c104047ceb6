package api

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
)

// The hold routes: money reserved on one account for another, captured
// (all or part) or voided later, or released by its expiry
// (docs/api.md, "Holds").

func (s *Server) createHold(w http.ResponseWriter, r *http.Request) {
	var body wire.CreateHold
	if !s.decodeBody(w, r, &body) {
		return
	}
	if body.ExpiresInMs == 0 {
		body.ExpiresInMs = wire.DefaultHoldExpiryMs
	}
	cmd := engine.Command{Op: engine.OpCreateHold, Account: body.From, To: body.To, Amount: body.Amount, ExpiresInMs: body.ExpiresInMs}
	s.writeHold(w, r, cmd, http.StatusCreated)
}

func (s *Server) captureHold(w http.ResponseWriter, r *http.Request) {
	id, ok := holdID(w, r)
	var body wire.Amount // optional: without it, all of the hold
	if !ok || !s.decodeOptionalBody(w, r, &body) {
		return
	}
	s.writeHold(w, r, engine.Command{Op: engine.OpCaptureHold, Hold: id, Amount: body.Amount}, http.StatusOK)
}

func (s *Server) voidHold(w http.ResponseWriter, r *http.Request) {
	if id, ok := holdID(w, r); ok {
		s.writeHold(w, r, engine.Command{Op: engine.OpVoidHold, Hold: id}, http.StatusOK)
	}
}

// writeHold runs a hold op and answers with the hold and the accounts it
// moved that the caller may read.
func (s *Server) writeHold(w http.ResponseWriter, r *http.Request, cmd engine.Command, okStatus int) {
	out, _, ok := s.runOne(w, r, cmd)
	if !ok {
		return
	}
	writeJSON(w, okStatus, holdResult(out, cmd, callerOf(r)))
}

func holdResult(out node.Outcome, cmd engine.Command, c *caller) wire.HoldResult {
	var res wire.HoldResult
	if out.Hold != nil {
		res.Hold = wire.FromHold(*out.Hold)
	} else { // a retry of a hold the state no longer remembers
		res.Hold = wire.Hold{ID: cmd.Hold, From: cmd.Account, To: cmd.To, Status: "forgotten"}
	}
	for i, a := range out.Accounts {
		if !c.mayRead(a.Number) {
			continue
		}
		acct := wire.FromAccount(a)
		if i == 0 {
			res.From = &acct
		} else {
			res.To = &acct
		}
	}
	return res
}

// afterID reads a list's after parameter, an id of what (0 when left
// out).
func afterID(v, what string) (uint64, *wire.Problem) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, wire.NewProblem(wire.CodeInvalidParameter, fmt.Sprintf("after %q is not a %s id", v, what))
	}
	return n, nil
}

// holdID reads the {id} of a hold route; on a bad one it has answered.
func holdID(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	v := r.PathValue("id")
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil || id == 0 {
		writeProblem(w, wire.NewProblem(engine.CodeInvalidHold.String(), fmt.Sprintf("hold id %q is not a number of 1 or more", v)))
		return 0, false
	}
	return id, true
}

func (s *Server) getHold(w http.ResponseWriter, r *http.Request) {
	id, ok := holdID(w, r)
	if !ok {
		return
	}
	if p := s.consistent(r); p != nil {
		writeProblem(w, p)
		return
	}
	h, found, index := s.node.Hold(id)
	c := callerOf(r)
	if c.role == engine.RoleCustomer && !(found && (c.mayRead(h.From) || c.mayRead(h.To))) { // no oracle
		s.refused(w, r, c, wire.NewProblem(wire.CodeForbidden, fmt.Sprintf("%s (customer) may read only the holds of its own accounts", c.name)))
		return
	}
	setIndex(w, index)
	if !found {
		writeProblem(w, wire.NewProblem(engine.CodeHoldNotFound.String(),
			fmt.Sprintf("no hold %d (the state remembers every open hold and the most recently closed ones)", id)))
		return
	}
	writeJSON(w, http.StatusOK, wire.FromHold(h))
}

func (s *Server) listHolds(w http.ResponseWriter, r *http.Request) {
	number, ok := s.readable(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	after, p := afterID(q.Get("after"), "hold")
	limit, p := s.page(r, p)
	if p != nil {
		writeProblem(w, p)
		return
	}
	holds, index := s.node.HoldsOf(number, after, limit)
	out := wire.HoldList{Holds: make([]wire.Hold, len(holds))}
	for i, h := range holds {
		out.Holds[i] = wire.FromHold(h)
	}
	if len(holds) == limit {
		out.Next = holds[len(holds)-1].ID
	}
	setIndex(w, index)
	writeJSON(w, http.StatusOK, out)
}
