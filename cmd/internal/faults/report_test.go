package faults

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"
)

// report is what a run found, for docs/reliability.md.
type report struct {
	Faults       []fault `json:"faults"`
	Operations   int     `json:"operations"`
	Writes       int     `json:"writes"`
	Acknowledged int     `json:"acknowledged"`
	Rejected     int     `json:"rejected"`
	Unknown      int     `json:"unknown"`
	Lost         int     `json:"lost"`
	Reads        int     `json:"reads"`
	// HoldOps counts the writes that were hold ops, by kind.
	HoldOps    map[string]int `json:"hold_ops"`
	FailoverMs []int64        `json:"failover_ms"`
	// FailoverByKind is FailoverMs by the kind of fault.
	FailoverByKind map[string][]int64 `json:"failover_ms_by_kind"`
	Unchecked      []string           `json:"unchecked_accounts,omitempty"`
	ByFault        map[string]int     `json:"by_fault"`
}

// check runs every check on the history and writes the report.
func (c *cluster) check(ops []Op, faults []fault, resolved Resolved, accounts []string, final map[string]uint64) {
	open := map[string]uint64{}
	for _, a := range accounts {
		open[a] = opening
	}
	r := report{Faults: faults, Operations: len(ops), ByFault: map[string]int{}, HoldOps: map[string]int{}}
	for _, f := range faults {
		r.ByFault[f.Kind]++
	}
	for _, op := range ops {
		switch {
		case op.Key == "":
			r.Reads++
			continue
		case op.Outcome == OutcomeOK:
			r.Acknowledged++
		case op.Outcome == OutcomeUnknown:
			r.Unknown++
		default:
			r.Rejected++
		}
		r.Writes++
		switch op.Kind {
		case KindCreateHold, KindCaptureHold, KindVoidHold:
			r.HoldOps[op.Kind+" "+op.Outcome]++
		}
	}
	r.FailoverMs, r.FailoverByKind = failovers(ops, faults, c.h0)
	lost, err := ExactlyOnce(ops, resolved, open, final)
	r.Lost = lost
	if err != nil {
		c.t.Error(err)
	}
	if err := MoneyConserved(ops, uint64(len(accounts))*opening); err != nil {
		c.t.Error(err)
	}
	if err := LocalReadsMonotonic(ops); err != nil {
		c.t.Error(err)
	}
	if err := ReadsAfterNotStale(ops); err != nil {
		c.t.Error(err)
	}
	started := time.Now()
	unchecked, err := Linearizable(ops, open, time.Minute)
	r.Unchecked = unchecked
	if err != nil {
		c.t.Error(err)
	}
	c.t.Logf("linearizability checked in %v", time.Since(started).Round(time.Millisecond))
	data, _ := json.MarshalIndent(r, "", "  ")
	os.WriteFile(filepath.Join(filepath.Dir(c.dir), "report.json"), data, 0o644)
	c.t.Logf("report: %s", data)
}

// failovers is, for each fault that lost the leader, the time from the
// fault to the first acknowledged write invoked after it; and those
// times by kind of fault.
func failovers(ops []Op, faults []fault, h *History) ([]int64, map[string][]int64) {
	var out []int64
	byKind := map[string][]int64{}
	for _, f := range faults {
		if !f.failover {
			continue
		}
		at := h.At(f.At)
		best := int64(-1)
		for _, op := range ops {
			if op.Key != "" && op.Outcome == OutcomeOK && op.Call >= at && (best < 0 || op.Return < best) {
				best = op.Return
			}
		}
		if best >= 0 {
			ms := (best - at) / int64(time.Millisecond)
			out = append(out, ms)
			byKind[f.Kind] = append(byKind[f.Kind], ms)
		}
	}
	return out, byKind
}
