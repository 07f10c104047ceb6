package api

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
)

// createToken adds a token through the log (admin only: the guard).
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var body wire.TokenRequest
	if !s.decodeBody(w, r, &body) {
		return
	}
	spec, secret, p := tokenSpec(body)
	if p != nil {
		writeProblem(w, p)
		return
	}
	out, index, ok := s.runOne(w, r, engine.Command{Op: engine.OpCreateToken, Name: body.Name, Token: spec})
	if !ok {
		return
	}
	tok, p := s.appliedToken(r, out.Token, index)
	if p != nil {
		writeProblem(w, p)
		return
	}
	s.events.admin(r, "create_token", "token", tok.ID, "name", tok.Name, "token_role", tok.Role, "index", index)
	tok.Token = secret
	writeJSON(w, http.StatusCreated, tok)
}

// tokenSpec reads a token request; secret is the one it made, if it had
// to.
func tokenSpec(body wire.TokenRequest) (*engine.TokenSpec, string, *wire.Problem) {
	role, ok := engine.ParseRole(body.Role)
	if !ok {
		return nil, "", wire.NewProblem(engine.CodeInvalidToken.String(), fmt.Sprintf("role %q: use admin, teller, auditor or customer", body.Role))
	}
	spec := &engine.TokenSpec{Role: role, Accounts: slices.Clone(body.Accounts)}
	slices.Sort(spec.Accounts)
	if len(slices.Compact(slices.Clone(spec.Accounts))) != len(spec.Accounts) {
		return nil, "", wire.NewProblem(engine.CodeInvalidToken.String(), "an account is named twice")
	}
	if body.ExpiresIn != "" {
		d, err := time.ParseDuration(body.ExpiresIn)
		if err != nil || d < time.Millisecond || d.Milliseconds() > engine.TokenTTLMax {
			return nil, "", wire.NewProblem(engine.CodeInvalidToken.String(), fmt.Sprintf("expires_in %q: a duration from 1ms to 10 years, like 720h", body.ExpiresIn))
		}
		spec.TTLMs = uint64(d.Milliseconds())
	}
	var secret string
	if body.SecretSHA256 == "" {
		secret = wire.NewToken()
		spec.Hash = wire.TokenHash(secret)
	} else if h, err := hex.DecodeString(body.SecretSHA256); err != nil || len(h) != engine.TokenHashLen {
		return nil, "", wire.NewProblem(engine.CodeInvalidToken.String(), "secret_sha256 is 64 hex digits")
	} else {
		copy(spec.Hash[:], h)
	}
	return spec, secret, nil
}

// appliedToken reads token id once this node applied index.
func (s *Server) appliedToken(r *http.Request, id, index uint64) (wire.Token, *wire.Problem) {
	ctx, cancel := contextFor(r, s.cfg.ReadTimeout)
	defer cancel()
	if err := s.node.WaitApplied(ctx, index); err != nil {
		return wire.Token{}, wire.NewProblem(wire.CodeTimeout, err.Error())
	}
	t, ok := s.node.TokenByID(id)
	if !ok {
		return wire.Token{}, wire.NewProblem(wire.CodeInternal, fmt.Sprintf("token %d is not in the state at index %d", id, index))
	}
	return wire.FromToken(t), nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	if p := s.consistent(r); p != nil {
		writeProblem(w, p)
		return
	}
	list := s.node.Tokens()
	out := wire.Tokens{Tokens: make([]wire.Token, len(list))}
	for i, t := range list {
		out.Tokens[i] = wire.FromToken(t)
	}
	writeJSON(w, http.StatusOK, out)
}

// revokeToken revokes a token through the log: from that index on every
// node refuses it, and the engine refuses its commands that were still on
// their way.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		writeProblem(w, wire.NewProblem(engine.CodeInvalidToken.String(), fmt.Sprintf("token id %q is not a number", r.PathValue("id"))))
		return
	}
	out, index, ok := s.runOne(w, r, engine.Command{Op: engine.OpRevokeToken, Token: &engine.TokenSpec{ID: id}})
	if !ok {
		return
	}
	tok, p := s.appliedToken(r, out.Token, index)
	if p != nil {
		writeProblem(w, p)
		return
	}
	s.events.admin(r, "revoke_token", "token", tok.ID, "name", tok.Name, "index", index)
	writeJSON(w, http.StatusOK, tok)
}
