package api

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
)

// The four-eyes routes: the per-role limits (admins), and the approvals
// a command above its limit waits in (docs/api.md, "Four eyes").

func (s *Server) setApprovalLimit(w http.ResponseWriter, r *http.Request) {
	var body wire.ApprovalLimit
	if !s.decodeBody(w, r, &body) {
		return
	}
	role, _ := engine.ParseRole(body.Role)
	cmd := engine.Command{Op: engine.OpSetApprovalLimit, Amount: body.Limit, Token: &engine.TokenSpec{Role: role}}
	if _, index, ok := s.runOne(w, r, cmd); ok {
		s.events.admin(r, "set_approval_limit", "limit_role", body.Role, "limit", body.Limit, "index", index)
		writeJSON(w, http.StatusOK, body)
	}
}

func (s *Server) approvalLimits(w http.ResponseWriter, r *http.Request) {
	if p := s.consistent(r); p != nil {
		writeProblem(w, p)
		return
	}
	out := wire.ApprovalLimits{Limits: []wire.ApprovalLimit{}}
	for _, role := range []engine.Role{engine.RoleTeller, engine.RoleCustomer} {
		if l := s.node.ApprovalLimit(role); l != 0 {
			out.Limits = append(out.Limits, wire.ApprovalLimit{Role: role.String(), Limit: l})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request) {
	s.decideApproval(w, r, engine.OpApprove)
}
func (s *Server) rejectOne(w http.ResponseWriter, r *http.Request) {
	s.decideApproval(w, r, engine.OpReject)
}

// decideApproval approves or rejects; an approved command that the bank
// then refuses (insufficient_funds, say) is that problem, its approval
// closed all the same.
func (s *Server) decideApproval(w http.ResponseWriter, r *http.Request, op engine.Op) {
	id, ok := approvalID(w, r)
	if !ok {
		return
	}
	out, _, ok := s.runOne(w, r, engine.Command{Op: op, Approval: id})
	if !ok {
		return
	}
	res := wire.ApprovalResult{}
	if out.Approval != nil {
		res.Approval = wire.FromApproval(*out.Approval, s.node.PrincipalName)
	}
	for _, a := range out.Accounts {
		res.Accounts = append(res.Accounts, wire.FromAccount(a))
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) getApproval(w http.ResponseWriter, r *http.Request) {
	id, ok := approvalID(w, r)
	if !ok {
		return
	}
	if p := s.consistent(r); p != nil {
		writeProblem(w, p)
		return
	}
	a, found, index := s.node.Approval(id)
	setIndex(w, index)
	if !found {
		writeProblem(w, wire.NewProblem(engine.CodeApprovalNotFound.String(), fmt.Sprintf("no approval %d (the state remembers every pending approval and the most recently closed ones)", id)))
		return
	}
	writeJSON(w, http.StatusOK, wire.FromApproval(a, s.node.PrincipalName))
}

// listApprovals is GET /v1/approvals?status=pending|all&after=&limit=.
func (s *Server) listApprovals(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, p := afterID(q.Get("after"), "approval")
	status := q.Get("status")
	if p == nil && status != "" && status != "pending" && status != "all" {
		p = wire.NewProblem(wire.CodeInvalidParameter, fmt.Sprintf("status %q: use pending (the default) or all", status))
	}
	limit, p := s.page(r, p)
	if p != nil {
		writeProblem(w, p)
		return
	}
	list, index := s.node.Approvals(after, limit, status != "all")
	out := wire.ApprovalList{Approvals: make([]wire.Approval, len(list))}
	for i, a := range list {
		out.Approvals[i] = wire.FromApproval(a, s.node.PrincipalName)
	}
	if len(list) == limit {
		out.Next = list[len(list)-1].ID
	}
	setIndex(w, index)
	writeJSON(w, http.StatusOK, out)
}

// approvalID reads the {id} of an approval route; on a bad one it has
// answered.
func approvalID(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	v := r.PathValue("id")
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil || id == 0 {
		writeProblem(w, wire.NewProblem(engine.CodeInvalidApproval.String(), fmt.Sprintf("approval id %q is not a number of 1 or more", v)))
		return 0, false
	}
	return id, true
}
