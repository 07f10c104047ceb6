package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/zkbank/zkbank/cmd/internal/wire"
)

// decodeBody reads r's JSON body into v strictly: one object, no unknown
// fields, integers only where integers go, within the body limit. On any
// failure it answers with a problem naming the cause and returns false.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if p := s.readBody(w, r, v); p != nil {
		writeProblem(w, p)
		return false
	}
	return true
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request, v any) *wire.Problem {
	body, p := s.readJSON(w, r)
	if p != nil {
		return p
	}
	return parseBody(body, v)
}

// decodeOptionalBody is decodeBody for a route whose body may be left
// out: an empty one leaves v as it is.
func (s *Server) decodeOptionalBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, p := s.readJSON(w, r)
	if p == nil && len(bytes.TrimSpace(body)) > 0 {
		p = parseBody(body, v)
	}
	if p != nil {
		writeProblem(w, p)
		return false
	}
	return true
}

// parseBody decodes a JSON body into v. The common shapes by hand:
// encoding/json was a fifth of a node's CPU under batches. Anything else
// goes to it, errors and all.
func parseBody(body []byte, v any) *wire.Problem {
	if wire.DecodePlain(body, v) {
		return nil
	}
	return wire.DecodeStrict(body, v)
}

// readJSON checks that r's body is JSON and reads it within the limit.
func (s *Server) readJSON(w http.ResponseWriter, r *http.Request) ([]byte, *wire.Problem) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, wire.NewProblem(wire.CodeUnsupportedMedia, fmt.Sprintf("content type %q; send application/json", ct))
		}
	}
	return s.readRaw(w, r, wire.CodeInvalidJSON)
}

// readRaw reads r's body within the body limit; a body that cannot be
// read for another reason is a problem with code unreadable.
func (s *Server) readRaw(w http.ResponseWriter, r *http.Request, unreadable string) ([]byte, *wire.Problem) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.BodyBytesMax))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, wire.NewProblem(wire.CodeBodyTooLarge, fmt.Sprintf("the body is over %d bytes", s.cfg.BodyBytesMax))
		}
		return nil, wire.NewProblem(unreadable, "reading the body: "+err.Error())
	}
	return body, nil
}
