package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/history"
)

// accountHistory answers a page of an account's statement from this
// node's history: its commands after the cursor, in log order.
func (s *Server) accountHistory(w http.ResponseWriter, r *http.Request) {
	number, ok := s.readable(w, r)
	if !ok {
		return
	}
	after, p := cursorParam(r.URL.Query().Get("after"), "after")
	limit, p := s.page(r, p)
	if p != nil {
		writeProblem(w, p)
		return
	}
	h := s.node.History()
	index := h.Through()
	out := wire.Statement{Account: number, HistoryFrom: h.From(), Lines: []wire.StatementLine{}}
	err := h.Statement(number, after, func(ev history.Event) bool {
		out.Lines = append(out.Lines, wire.LineOf(&ev, number))
		return len(out.Lines) < limit
	})
	if err != nil {
		writeProblem(w, historyProblem(err, h))
		return
	}
	if len(out.Lines) == limit {
		out.Next = out.Lines[limit-1].Cursor
	}
	setIndex(w, max(index, h.Through()))
	writeJSON(w, http.StatusOK, out)
}

// cursorParam reads a cursor parameter; "" is before every event.
func cursorParam(v, name string) (history.Cursor, *wire.Problem) {
	if v == "" {
		return history.Cursor{}, nil
	}
	c, err := history.ParseCursor(v)
	if err != nil {
		return c, wire.NewProblem(wire.CodeInvalidParameter, name+": "+err.Error())
	}
	return c, nil
}

// historyProblem is the problem of a failed history read: 410 with the
// first index held, for a cursor older than that.
func historyProblem(err error, h *history.Store) *wire.Problem {
	if errors.Is(err, history.ErrGone) {
		p := wire.NewProblem(wire.CodeHistoryGone, fmt.Sprintf("%v; ask a node that holds it (bankctl account history finds one), or read the archives", err))
		p.HistoryFrom = h.From()
		return p
	}
	return wire.NewProblem(wire.CodeInternal, "reading the history: "+err.Error())
}
