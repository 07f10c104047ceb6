package node

import (
	"errors"
	"testing"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
)

func appliedEntry(index, epoch uint64, n int) (*engine.Entry, []engine.Result) {
	e := &engine.Entry{Envelope: entry.Envelope{Index: index, Epoch: epoch}, Commands: make([]engine.Command, n)}
	results := make([]engine.Result, n)
	for i := range results {
		results[i] = engine.Result{Code: engine.Code(i + 1)}
	}
	return e, results
}

// TestOnlyAnEntryOfTheWaitersEpochAnswersIt: a waiter remembers its
// term's epoch; another leader's entry at the same index fails its
// requests (their outcome is unknown to this term) instead of answering
// them with someone else's results.
func TestOnlyAnEntryOfTheWaitersEpochAnswersIt(t *testing.T) {
	var w waiters
	r := newRequest(make([]engine.Command, 2))
	w.add(7, &entryWaiter{epoch: 3, reqs: []*request{r}})
	e, results := appliedEntry(7, 4, 2)
	w.resolve(e, results)
	<-r.done
	if !errors.Is(r.err, ErrLeadershipLost) || r.out != nil {
		t.Fatalf("answered %v / %v by another epoch's entry, want ErrLeadershipLost", r.out, r.err)
	}
}

// TestAnEntryAnswersEachRequestWithItsOwnCommands: the results of one
// entry are split among its requests, in order.
func TestAnEntryAnswersEachRequestWithItsOwnCommands(t *testing.T) {
	var w waiters
	a, b := newRequest(make([]engine.Command, 1)), newRequest(make([]engine.Command, 2))
	w.add(9, &entryWaiter{epoch: 2, reqs: []*request{a, b}})
	e, results := appliedEntry(9, 2, 3)
	w.resolve(e, results)
	<-a.done
	<-b.done
	if a.err != nil || b.err != nil || a.index != 9 || len(a.out) != 1 || a.out[0].Code != 1 || len(b.out) != 2 || b.out[1].Code != 3 {
		t.Fatalf("a %+v %v, b %+v %v", a.out, a.err, b.out, b.err)
	}
}

// TestARequestIsAnsweredOnce: whoever takes the waiter answers; a late
// second answer (a failed append racing its entry) finds nothing.
func TestARequestIsAnsweredOnce(t *testing.T) {
	var w waiters
	r := newRequest(make([]engine.Command, 1))
	w.add(5, &entryWaiter{epoch: 1, reqs: []*request{r}})
	w.fail(5, ErrLeadershipLost)
	e, results := appliedEntry(5, 1, 1)
	w.resolve(e, results) // would close r.done twice and panic if it found the waiter
	w.fail(5, ErrNotLeader)
	<-r.done
	if !errors.Is(r.err, ErrLeadershipLost) {
		t.Fatalf("err %v, want the first answer", r.err)
	}
}
