package api

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
)

// internalSubmit is the leader's end of a forwarded write. It never
// forwards again: a node that is not the leader says so, and the sender
// looks for the leader anew.
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
	index, out, err := s.node.Submit(r.Context(), cmds)
	if errors.Is(err, node.ErrNotLeader) {
		writeProblem(w, wire.NewProblem(wire.CodeNotLeader, "this node does not lead"))
		return
	}
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	writeJSON(w, http.StatusOK, toBatchResult(submitted{index, out}))
}

func (s *Server) internalReadIndex(w http.ResponseWriter, r *http.Request) {
	index, err := s.node.ReadIndex()
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
