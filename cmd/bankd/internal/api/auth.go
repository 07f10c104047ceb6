package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/zkbank/zkbank/certs"
	"github.com/zkbank/zkbank/cmd/internal/tlsconf"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
)

// caller is who sent a request: a node (by its certificate), or a
// principal (by a bearer token or a client certificate) with a role and,
// for a customer, its accounts. Every command it sends carries principal,
// and the engine checks it again at apply.
type caller struct {
	node      string // a node's id, for a node certificate
	principal string // the commands' "by": engine.TokenPrincipal or engine.CertPrincipal
	name      string // the token's or the certificate's name, for logs
	role      engine.Role
	accounts  []string // a customer's, sorted
}

// mayRead says whether the caller may read account number.
func (c *caller) mayRead(number string) bool {
	return c.role != engine.RoleCustomer || engine.Owns(c.accounts, number)
}

// insecureCaller is every caller of a bankd run with --insecure: no
// principal, so the engine lets its commands through.
var insecureCaller = &caller{name: "insecure", role: engine.RoleAdmin}

type callerKey struct{}

// callerOf is the caller the guard let through.
func callerOf(r *http.Request) *caller {
	if c, ok := r.Context().Value(callerKey{}).(*caller); ok {
		return c
	}
	return insecureCaller
}

// The routes' audiences: /internal/ is for nodes, /v1/ for principals,
// /v1/admin/ for admins (auditors may read it); the probes and /metrics
// are for anyone.
const (
	internalPrefix  = "/internal/"
	apiPrefix       = "/v1/"
	adminPrefix     = "/v1/admin/"
	approvalsPrefix = "/v1/approvals"
)

// guard lets a request through when its caller may call its route, with
// the caller in its context, and otherwise answers 401 unauthenticated
// (no credential, or one the bank does not take), 403 forbidden (a known
// caller of the wrong kind) or 429 rate_limited. With --insecure it lets
// everything through.
func (s *Server) guard(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	p := r.URL.Path
	if s.cfg.Insecure || !(strings.HasPrefix(p, internalPrefix) || strings.HasPrefix(p, apiPrefix)) {
		return r, true
	}
	c, prob := s.identify(r)
	if prob == nil {
		prob = permitted(c, r.Method, p)
	}
	if prob == nil && c.node == "" && !s.limits.allow(c.principal) {
		prob = wire.NewProblem(wire.CodeRateLimited, fmt.Sprintf("more than %d requests a second from %s; slow down", s.cfg.RateLimit, c.name))
	}
	if prob != nil {
		s.refused(w, r, c, prob)
		return r, false
	}
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, c)), true
}

// refused answers prob, and says so in the log and the metrics (the
// principal and route; never a credential).
func (s *Server) refused(w http.ResponseWriter, r *http.Request, c *caller, prob *wire.Problem) {
	if prob.Code == wire.CodeUnauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="zkbank"`)
	}
	s.events.refused(r, c, prob)
	writeProblem(w, prob)
}

// identify reads the caller from the request's bearer token, else from
// its verified client certificate.
func (s *Server) identify(r *http.Request) (*caller, *wire.Problem) {
	if h, ok := r.Header["Authorization"]; ok {
		return s.bearer(h)
	}
	cert := tlsconf.Caller(r.TLS)
	if cert == nil {
		return nil, unauthenticated("send Authorization: Bearer <token>, or a client certificate of this cluster's CA")
	}
	serial := certs.Serial(cert)
	if s.node.Revoked(serial) {
		return nil, unauthenticated(fmt.Sprintf("certificate %s is revoked", serial))
	}
	if id, ok := certs.NodeID(cert); ok {
		return &caller{node: id, name: "node " + id}, nil
	}
	name, roleName, ok := certs.Client(cert)
	role, known := engine.ParseRole(roleName)
	if !ok || !known {
		return nil, unauthenticated(fmt.Sprintf("certificate %s (%q) is neither a node's nor a client's", serial, cert.Subject.CommonName))
	}
	return &caller{principal: engine.CertPrincipal(role, serial), name: name, role: role}, nil
}

// bearer reads the caller of an Authorization header.
func (s *Server) bearer(h []string) (*caller, *wire.Problem) {
	if len(h) != 1 {
		return nil, unauthenticated("send one Authorization header")
	}
	scheme, tok, _ := strings.Cut(h[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return nil, unauthenticated("the Authorization header takes a bearer token: Bearer <token>")
	}
	if !wire.WellFormedToken(tok) {
		return nil, unauthenticated("the bearer token is not a token of this bank (zkb_ and 43 characters)")
	}
	t, now, ok := s.node.TokenByHash(wire.TokenHash(tok))
	switch {
	case !ok:
		return nil, unauthenticated("the bearer token is not a token of this bank")
	case t.RevokedIndex != 0:
		return nil, unauthenticated(fmt.Sprintf("token %d was revoked at index %d", t.ID, t.RevokedIndex))
	case t.ExpiresMs != 0 && now >= t.ExpiresMs:
		return nil, unauthenticated(fmt.Sprintf("token %d expired", t.ID))
	}
	return &caller{principal: engine.TokenPrincipal(t.ID), name: t.Name, role: t.Role, accounts: t.Accounts}, nil
}

func unauthenticated(detail string) *wire.Problem {
	return wire.NewProblem(wire.CodeUnauthenticated, detail)
}

// permitted says whether c may call method on path at all; which
// accounts a customer may touch is the handlers' (reads) and the
// engine's (writes) to judge.
func permitted(c *caller, method, path string) *wire.Problem {
	forbid := func(what string) *wire.Problem {
		return wire.NewProblem(wire.CodeForbidden, fmt.Sprintf("%s (%s) may not %s", c.name, c.role, what))
	}
	switch {
	case strings.HasPrefix(path, internalPrefix):
		if c.node == "" {
			return wire.NewProblem(wire.CodeForbidden, "only nodes call "+internalPrefix)
		}
	case c.node != "":
		return wire.NewProblem(wire.CodeForbidden, "node "+c.node+"'s certificate is for calls between nodes, not for the API")
	case strings.HasPrefix(path, adminPrefix):
		if c.role != engine.RoleAdmin && !(c.role == engine.RoleAuditor && method == http.MethodGet) {
			return forbid(method + " " + path)
		}
	case path == "/v1/cluster" || path == "/v1/digest" || strings.HasPrefix(path, approvalsPrefix):
		if c.role == engine.RoleCustomer {
			return forbid(method + " " + path)
		}
		if method != http.MethodGet && c.role == engine.RoleAuditor {
			return forbid("write")
		}
	case method != http.MethodGet && c.role == engine.RoleAuditor:
		return forbid("write")
	}
	return nil
}
