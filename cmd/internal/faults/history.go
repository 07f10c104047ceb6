// Package faults checks a bank workload's history, recorded against a real
// cluster while a nemesis kills, pauses and restarts its processes, in the
// style of Jepsen's bank test: nothing acknowledged lost or applied twice,
// money conserved at every linearizable read, each account's history
// linearizable (porcupine), local reads never going backwards on a node,
// reads with min_index never answering from before it.
// The harness that produces the history is this package's test.
package faults

import (
	"encoding/json"
	"os"
	"sync"
	"time"
)

// Outcomes besides the engine's codes.
const (
	OutcomeOK      = "ok"
	OutcomeUnknown = "unknown" // no definite answer: may or may not have applied
)

// Op kinds.
const (
	KindTransfer = "transfer"
	KindDeposit  = "deposit"
	KindWithdraw = "withdraw"
	KindRead     = "read"     // one account, linearizable
	KindReadAll  = "read_all" // every account in one list, local or linearizable
	// KindReadAfter is one account read with min_index: the index of the
	// reader's own last acknowledged write.
	KindReadAfter = "read_after"
	// The hold ops, on accounts of their own (the per-account model
	// knows balances, not holds): Account is a hold's from, To its to.
	KindCreateHold  = "create_hold"
	KindCaptureHold = "capture_hold"
	KindVoidHold    = "void_hold"
)

// Op is one operation of the history, from invocation to answer.
type Op struct {
	Worker      int               `json:"worker"`
	Kind        string            `json:"kind"`
	Key         string            `json:"key,omitempty"`
	Account     string            `json:"account,omitempty"`
	To          string            `json:"to,omitempty"`
	Amount      uint64            `json:"amount,omitempty"`
	Hold        uint64            `json:"hold,omitempty"`        // the hold a capture or void acts on, or a create made
	Node        string            `json:"node,omitempty"`        // who answered
	Consistency string            `json:"consistency,omitempty"` // reads
	Call        int64             `json:"call"`                  // ns since the history began
	Return      int64             `json:"return"`
	Outcome     string            `json:"outcome"`
	Balances    map[string]uint64 `json:"balances,omitempty"`  // accounts after (writes) or as read
	Index       uint64            `json:"index,omitempty"`     // X-Bank-Index of the answer
	MinIndex    uint64            `json:"min_index,omitempty"` // read_after: what it asked for
	Tries       int               `json:"tries"`
}

// History collects operations from concurrent workers.
type History struct {
	start time.Time
	mu    sync.Mutex
	ops   []Op
}

// NewHistory starts the clock.
func NewHistory() *History { return &History{start: time.Now()} }

// Now is the history's clock.
func (h *History) Now() int64 { return time.Since(h.start).Nanoseconds() }

// At converts a wall time to the history's clock.
func (h *History) At(t time.Time) int64 { return t.Sub(h.start).Nanoseconds() }

// Add records a finished operation.
func (h *History) Add(op Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// Ops is a copy of the history so far.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}

// Write saves the history as JSON lines.
func Write(path string, ops []Op) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, op := range ops {
		if err := enc.Encode(op); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
