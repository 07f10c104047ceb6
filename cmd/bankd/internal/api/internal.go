package api

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/bankd/internal/peerwire"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
)

// internalSubmit is the leader's end of a forwarded write in JSON, as
// nodes of earlier versions send it. It never forwards again: a node that
// is not the leader says so, and the sender looks for the leader anew.
func (s *Server) internalSubmit(w http.ResponseWriter, r *http.Request) {
	var body wire.Batch
	if !s.decodeBody(w, r, &body) {
		return
	}
	cmds := make([]engine.Command, len(body.Commands))
	for i, wc := range body.Commands {
		c, err := wc.ToEngine()
		if err != nil {
			writeProblem(w, wire.NewProblem(wire.CodeInvalidOp, err.Error()))
			return
		}
		cmds[i] = c
	}
	if index, out, ok := s.submitForPeer(w, r, cmds); ok {
		writeJSON(w, http.StatusOK, toBatchResult(submitted{index, out}))
	}
}

// internalSubmitPeer is internalSubmit in the binary peer format.
func (s *Server) internalSubmitPeer(w http.ResponseWriter, r *http.Request) {
	body, p := s.readRaw(w, r, wire.CodeInvalidOp)
	if p != nil {
		writeProblem(w, p)
		return
	}
	cmds, err := peerwire.DecodeCommands(body)
	if err != nil {
		writeProblem(w, wire.NewProblem(wire.CodeInvalidOp, err.Error()))
		return
	}
	index, out, ok := s.submitForPeer(w, r, cmds)
	if !ok {
		return
	}
	raw, err := peerwire.EncodeResult(index, out)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	w.Header().Set("Content-Type", peerwire.ContentType)
	w.Write(raw)
}

// submitForPeer submits a forwarded write on this node, which must lead;
// on failure it writes the problem and returns false.
func (s *Server) submitForPeer(w http.ResponseWriter, r *http.Request, cmds []engine.Command) (uint64, []node.Outcome, bool) {
	index, out, err := s.node.Submit(r.Context(), cmds)
	if errors.Is(err, node.ErrNotLeader) {
		writeProblem(w, wire.NewProblem(wire.CodeNotLeader, "this node does not lead"))
		return 0, nil, false
	}
	if err != nil {
		writeProblem(w, problemFor(err))
		return 0, nil, false
	}
	return index, out, true
}

func (s *Server) internalReadIndex(w http.ResponseWriter, r *http.Request) {
	index, err := s.node.ReadIndex(r.Context())
	if err != nil {
		writeProblem(w, wire.NewProblem(wire.CodeNotLeader, err.Error()))
		return
	}
	writeJSON(w, http.StatusOK, wire.ReadIndex{Index: index})
}

// internalSnapshot streams this node's newest snapshot file; the receiver
// verifies it before use.
func (s *Server) internalSnapshot(w http.ResponseWriter, r *http.Request) {
	f, info, err := s.node.OpenSnapshot()
	if err != nil {
		writeProblem(w, wire.NewProblem(wire.CodeNotFound, err.Error()))
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
	setIndex(w, info.Index)
	io.Copy(w, f) // a broken transfer fails the receiver's checksum
}
