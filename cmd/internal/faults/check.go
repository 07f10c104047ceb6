package faults

import (
	"fmt"
	"sort"
)

// Resolved is what each write's key answers when the write is sent again
// after the run: the outcome first recorded under it, and whether it was
// recorded before (replayed) or only now.
type Resolved map[string]Resolution

// Resolution is one key's answer on the resend.
type Resolution struct {
	Outcome  string
	Replayed bool
}

// MoneyConserved checks every linearizable read of all accounts: its total
// must lie between what the operations that surely happened before it and
// those that may have happened allow. Local reads may be stale and are
// not checked here.
func MoneyConserved(ops []Op, openingTotal uint64) error {
	for _, r := range ops {
		if r.Kind != KindReadAll || r.Consistency != "linearizable" || r.Outcome != OutcomeOK {
			continue
		}
		var total uint64
		for _, b := range r.Balances {
			total += b
		}
		lo, hi := int64(openingTotal), int64(openingTotal)
		for _, op := range ops {
			rejected := op.Outcome != OutcomeOK && op.Outcome != OutcomeUnknown
			surely := op.Outcome == OutcomeOK && op.Return < r.Call // applied before the read began
			maybe := !rejected && op.Call < r.Return                // may have applied before it ended
			amt := int64(op.Amount)
			switch op.Kind {
			case KindDeposit:
				if surely {
					lo += amt
				}
				if maybe {
					hi += amt
				}
			case KindWithdraw:
				if surely {
					hi -= amt
				}
				if maybe {
					lo -= amt
				}
			}
		}
		if int64(total) < lo || int64(total) > hi {
			return fmt.Errorf("faults: read at %d (index %d on %s) totals %d; the operations around it allow %d..%d", r.Call, r.Index, r.Node, total, lo, hi)
		}
	}
	return nil
}

// LocalReadsMonotonic checks that no node's reads go back in the log.
// ReadsAfterNotStale checks that a read with min_index never answered
// from an earlier index: a node behind (cut off, lagging) must wait, fail
// or send the client elsewhere.
func ReadsAfterNotStale(ops []Op) error {
	for _, op := range ops {
		if op.Kind == KindReadAfter && op.Outcome == OutcomeOK && op.Index < op.MinIndex {
			return fmt.Errorf("faults: %s answered a read with min_index %d from index %d", op.Node, op.MinIndex, op.Index)
		}
	}
	return nil
}

func LocalReadsMonotonic(ops []Op) error {
	sorted := append([]Op(nil), ops...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Call < sorted[j].Call })
	last := map[string]Op{}
	for _, op := range sorted {
		if op.Kind != KindReadAll || op.Outcome != OutcomeOK || op.Index == 0 {
			continue
		}
		if prev, ok := last[op.Node]; ok && prev.Return < op.Call && op.Index < prev.Index {
			return fmt.Errorf("faults: %s answered index %d at %d after index %d at %d", op.Node, op.Index, op.Call, prev.Index, prev.Return)
		}
		last[op.Node] = op
	}
	return nil
}

// ExactlyOnce checks the writes against their resends and the final
// balances: an acknowledged write must have been recorded (the resend is a
// replay with the same outcome), a rejected one too; an unknown one counts
// as whatever its resend says. The final balances must be exactly the
// opening ones plus the effect of every write whose outcome is ok, once.
func ExactlyOnce(ops []Op, res Resolved, opening, final map[string]uint64) (lost int, err error) {
	want := map[string]int64{}
	for a, b := range opening {
		want[a] = int64(b)
	}
	for _, op := range ops {
		if op.Key == "" {
			continue
		}
		r, ok := res[op.Key]
		if !ok {
			return lost, fmt.Errorf("faults: %s %s was not resent", op.Kind, op.Key)
		}
		switch {
		case op.Outcome == OutcomeOK && (r.Outcome != OutcomeOK || !r.Replayed):
			lost++
		case op.Outcome != OutcomeOK && op.Outcome != OutcomeUnknown && (r.Outcome != op.Outcome || !r.Replayed):
			return lost, fmt.Errorf("faults: %s %s was answered %s, but its key now says %+v", op.Kind, op.Key, op.Outcome, r)
		}
		if r.Outcome != OutcomeOK {
			continue
		}
		amt := int64(op.Amount)
		switch op.Kind {
		case KindDeposit:
			want[op.Account] += amt
		case KindWithdraw:
			want[op.Account] -= amt
		case KindTransfer, KindCaptureHold: // a capture moves its amount from the hold's from to its to
			want[op.Account] -= amt
			want[op.To] += amt
		}
	}
	if lost > 0 {
		return lost, fmt.Errorf("faults: %d acknowledged writes were not recorded under their keys", lost)
	}
	for a, w := range want {
		if int64(final[a]) != w {
			return 0, fmt.Errorf("faults: account %s ends with %d; the writes that applied add up to %d", a, final[a], w)
		}
	}
	return 0, nil
}

// FinalHold is a hold as the bank shows it after the run.
type FinalHold struct {
	ID       uint64
	From     string
	Amount   uint64
	Captured uint64
	Status   string
}

// HoldsAccounted checks the holds after the run against the writes and
// their resends: every capture or void that applied closed its hold so
// (a capture with its amount), no hold closed twice, and what the open
// holds reserve is exactly each account's held amount and the bank's
// total held.
func HoldsAccounted(ops []Op, res Resolved, holds []FinalHold, held map[string]uint64, totalHeld uint64) error {
	byID := map[uint64]FinalHold{}
	open := map[string]uint64{}
	var total uint64
	for _, h := range holds {
		byID[h.ID] = h
		if h.Status == "open" {
			open[h.From] += h.Amount
			total += h.Amount
		}
	}
	closedBy := map[uint64]string{}
	for _, op := range ops {
		if (op.Kind != KindCaptureHold && op.Kind != KindVoidHold) || res[op.Key].Outcome != OutcomeOK {
			continue
		}
		h, ok := byID[op.Hold]
		want := map[string]string{KindCaptureHold: "captured", KindVoidHold: "voided"}[op.Kind]
		switch {
		case closedBy[op.Hold] != "":
			return fmt.Errorf("faults: hold %d closed twice: %s %s and %s", op.Hold, op.Kind, op.Key, closedBy[op.Hold])
		case !ok || h.Status != want || (op.Kind == KindCaptureHold && h.Captured != op.Amount):
			return fmt.Errorf("faults: %s %s of hold %d applied, but the hold ends %+v", op.Kind, op.Key, op.Hold, h)
		}
		closedBy[op.Hold] = op.Kind + " " + op.Key
	}
	for acct, h := range held {
		if open[acct] != h {
			return fmt.Errorf("faults: account %s holds %d, its open holds reserve %d", acct, h, open[acct])
		}
	}
	if total != totalHeld {
		return fmt.Errorf("faults: the bank holds %d in all, the open holds reserve %d", totalHeld, total)
	}
	return nil
}
