package api

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"strings"

	"github.com/zkbank/zkbank/cmd/internal/certs"
	"github.com/zkbank/zkbank/cmd/internal/tlsconf"
	"github.com/zkbank/zkbank/cmd/internal/wire"
)

// caller is who sent a request, as its verified TLS client certificate
// says.
type caller struct {
	node   string // a node's id, for a node certificate
	name   string // a client's principal, for a client certificate
	role   string // the client's role
	serial string
}

// The routes' audiences: /internal/ is for nodes, /v1/ for clients,
// /v1/admin/ for admins; the probes and /metrics are for anyone.
const (
	internalPrefix = "/internal/"
	apiPrefix      = "/v1/"
	adminPrefix    = "/v1/admin/"
)

// guard lets a request through when its caller may call its route, and
// otherwise answers 401 unauthenticated (no credential, or a revoked one)
// or 403 forbidden (a known caller of the wrong kind). With --insecure it
// lets everything through.
func (s *Server) guard(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	if s.cfg.Insecure || !(strings.HasPrefix(p, internalPrefix) || strings.HasPrefix(p, apiPrefix)) {
		return true
	}
	c, prob := s.identify(r)
	if prob == nil {
		prob = permitted(c, r.Method, p)
	}
	if prob != nil {
		if prob.Code == wire.CodeUnauthenticated {
			w.Header().Set("WWW-Authenticate", `Bearer realm="zkbank"`)
		}
		writeProblem(w, prob)
		return false
	}
	return true
}

// identify reads the caller from the verified client certificate.
func (s *Server) identify(r *http.Request) (caller, *wire.Problem) {
	cert := tlsconf.Caller(r.TLS)
	if cert == nil {
		return caller{}, wire.NewProblem(wire.CodeUnauthenticated, "present a client certificate of this cluster's CA")
	}
	c := caller{serial: certs.Serial(cert)}
	if s.node.Revoked(c.serial) {
		return c, wire.NewProblem(wire.CodeUnauthenticated, fmt.Sprintf("certificate %s is revoked", c.serial))
	}
	if id, ok := certs.NodeID(cert); ok {
		c.node = id
		return c, nil
	}
	if name, role, ok := certs.Client(cert); ok {
		c.name, c.role = name, role
		return c, nil
	}
	return c, wire.NewProblem(wire.CodeUnauthenticated, describeCert(cert)+" is neither a node's nor a client's certificate")
}

// permitted says whether c may call method on path.
func permitted(c caller, method, path string) *wire.Problem {
	switch {
	case strings.HasPrefix(path, internalPrefix):
		if c.node == "" {
			return wire.NewProblem(wire.CodeForbidden, "only nodes call "+internalPrefix)
		}
	case c.node != "":
		return wire.NewProblem(wire.CodeForbidden, "node "+c.node+"'s certificate is for calls between nodes, not for the API")
	case strings.HasPrefix(path, adminPrefix) && c.role != "admin" && !(c.role == "auditor" && method == http.MethodGet):
		return wire.NewProblem(wire.CodeForbidden, c.name+" ("+c.role+") may not "+method+" "+path)
	}
	return nil
}

func describeCert(c *x509.Certificate) string {
	return fmt.Sprintf("certificate %s (%q)", certs.Serial(c), c.Subject.CommonName)
}
