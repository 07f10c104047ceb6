package faults

import (
	"strings"
	"testing"
	"time"
)

// The checkers must be able to fail: each case is a history a broken bank
// could produce.

func TestLinearizableCatchesALostAndAStaleRead(t *testing.T) {
	open := map[string]uint64{"a": 100, "b": 100}
	good := []Op{
		{Kind: KindDeposit, Account: "a", Amount: 10, Call: 0, Return: 10, Outcome: OutcomeOK, Balances: map[string]uint64{"a": 110}},
		{Kind: KindTransfer, Account: "a", To: "b", Amount: 50, Call: 20, Return: 30, Outcome: OutcomeOK, Balances: map[string]uint64{"a": 60, "b": 150}},
		{Kind: KindRead, Account: "a", Call: 40, Return: 50, Outcome: OutcomeOK, Balances: map[string]uint64{"a": 60}},
		{Kind: KindWithdraw, Account: "b", Amount: 500, Call: 40, Return: 50, Outcome: "insufficient_funds"},
		{Kind: KindWithdraw, Account: "b", Amount: 5, Call: 60, Outcome: OutcomeUnknown},
		{Kind: KindRead, Account: "b", Call: 70, Return: 80, Outcome: OutcomeOK, Balances: map[string]uint64{"b": 145}},
	}
	if un, err := Linearizable(good, open, time.Second); err != nil || len(un) > 0 {
		t.Fatalf("good history: %v %v", un, err)
	}
	stale := append(append([]Op(nil), good...), Op{Kind: KindRead, Account: "a", Call: 90, Return: 95, Outcome: OutcomeOK, Balances: map[string]uint64{"a": 110}})
	if _, err := Linearizable(stale, open, time.Second); err == nil {
		t.Fatal("a read of an overwritten balance passed")
	}
	doubled := append(append([]Op(nil), good...), Op{Kind: KindRead, Account: "b", Call: 90, Return: 95, Outcome: OutcomeOK, Balances: map[string]uint64{"b": 200}})
	if _, err := Linearizable(doubled, open, time.Second); err == nil {
		t.Fatal("a read showing a transfer applied twice passed")
	}
}

func TestMoneyConservedCatchesCreatedMoney(t *testing.T) {
	ops := []Op{
		{Kind: KindDeposit, Account: "a", Amount: 10, Call: 0, Return: 10, Outcome: OutcomeOK},
		{Kind: KindReadAll, Consistency: "linearizable", Call: 20, Return: 30, Outcome: OutcomeOK, Balances: map[string]uint64{"a": 110, "b": 100}},
	}
	if err := MoneyConserved(ops, 200); err != nil {
		t.Fatal(err)
	}
	ops[1].Balances["b"] = 101
	if err := MoneyConserved(ops, 200); err == nil {
		t.Fatal("a cent from nowhere passed")
	}
	ops[1].Balances["b"], ops[1].Balances["a"] = 100, 100
	if err := MoneyConserved(ops, 200); err == nil || !strings.Contains(err.Error(), "allow 210..210") {
		t.Fatalf("a lost acknowledged deposit: %v", err)
	}
}

func TestExactlyOnceCatchesLossAndDoubleApply(t *testing.T) {
	open := map[string]uint64{"a": 100}
	ops := []Op{
		{Kind: KindDeposit, Key: "k1", Account: "a", Amount: 10, Outcome: OutcomeOK},
		{Kind: KindDeposit, Key: "k2", Account: "a", Amount: 5, Outcome: OutcomeUnknown},
		{Kind: KindWithdraw, Key: "k3", Account: "a", Amount: 500, Outcome: "insufficient_funds"},
	}
	res := Resolved{"k1": {OutcomeOK, true}, "k2": {OutcomeOK, false}, "k3": {"insufficient_funds", true}}
	if _, err := ExactlyOnce(ops, res, open, map[string]uint64{"a": 115}); err != nil {
		t.Fatal(err)
	}
	lostRes := Resolved{"k1": {OutcomeOK, false}, "k2": {OutcomeOK, false}, "k3": {"insufficient_funds", true}}
	if lost, err := ExactlyOnce(ops, lostRes, open, map[string]uint64{"a": 115}); err == nil || lost != 1 {
		t.Fatalf("a lost acknowledged write: %d %v", lost, err)
	}
	if _, err := ExactlyOnce(ops, res, open, map[string]uint64{"a": 125}); err == nil {
		t.Fatal("a write applied twice passed")
	}
	if _, err := ExactlyOnce(ops, Resolved{"k1": {OutcomeOK, true}, "k2": {OutcomeOK, false}, "k3": {OutcomeOK, false}}, open, map[string]uint64{"a": 115}); err == nil {
		t.Fatal("a rejected write that applied later passed")
	}
}

func TestLocalReadsMonotonicCatchesGoingBack(t *testing.T) {
	ops := []Op{
		{Kind: KindReadAll, Node: "n1", Call: 0, Return: 10, Outcome: OutcomeOK, Index: 7},
		{Kind: KindReadAll, Node: "n1", Call: 20, Return: 30, Outcome: OutcomeOK, Index: 5},
	}
	if err := LocalReadsMonotonic(ops); err == nil {
		t.Fatal("a node going back passed")
	}
	ops[1].Node = "n2"
	if err := LocalReadsMonotonic(ops); err != nil {
		t.Fatal(err)
	}
}

func TestReadsAfterNotStaleCatchesAnEarlierIndex(t *testing.T) {
	ops := []Op{{Kind: KindReadAfter, Account: "a", Node: "n1", MinIndex: 7, Index: 9, Outcome: OutcomeOK}}
	if err := ReadsAfterNotStale(ops); err != nil {
		t.Fatal(err)
	}
	ops = append(ops, Op{Kind: KindReadAfter, Account: "a", Node: "n2", MinIndex: 7, Index: 6, Outcome: OutcomeOK})
	if err := ReadsAfterNotStale(ops); err == nil || !strings.Contains(err.Error(), "min_index 7 from index 6") {
		t.Fatalf("a read answered below its min_index: %v", err)
	}
}

func TestHoldsAccountedCatchesAHoldClosedWrongOrHeldAmiss(t *testing.T) {
	ops := []Op{
		{Kind: KindCreateHold, Key: "c1", Account: "h", To: "g", Amount: 30, Hold: 1, Outcome: OutcomeOK},
		{Kind: KindCaptureHold, Key: "x1", Account: "h", To: "g", Amount: 20, Hold: 1, Outcome: OutcomeUnknown},
		{Kind: KindCreateHold, Key: "c2", Account: "h", To: "g", Amount: 5, Hold: 2, Outcome: OutcomeOK},
	}
	res := Resolved{"c1": {OutcomeOK, true}, "x1": {OutcomeOK, false}, "c2": {OutcomeOK, true}}
	holds := []FinalHold{{ID: 1, From: "h", Amount: 30, Captured: 20, Status: "captured"}, {ID: 2, From: "h", Amount: 5, Status: "open"}}
	if err := HoldsAccounted(ops, res, holds, map[string]uint64{"h": 5, "g": 0}, 5); err != nil {
		t.Fatal(err)
	}
	if err := HoldsAccounted(ops, res, holds, map[string]uint64{"h": 35, "g": 0}, 5); err == nil {
		t.Fatal("a held amount that open holds do not reserve passed")
	}
	if err := HoldsAccounted(ops, res, holds, map[string]uint64{"h": 5}, 35); err == nil {
		t.Fatal("a total held amiss passed")
	}
	holds[0].Captured = 30
	if err := HoldsAccounted(ops, res, holds, map[string]uint64{"h": 5}, 5); err == nil {
		t.Fatal("a capture of the wrong amount passed")
	}
	holds[0].Captured = 20
	twice := append(ops, Op{Kind: KindVoidHold, Key: "v1", Hold: 1, Outcome: OutcomeOK})
	res["v1"] = Resolution{OutcomeOK, true}
	if err := HoldsAccounted(twice, res, holds, map[string]uint64{"h": 5}, 5); err == nil {
		t.Fatal("a hold captured and voided passed")
	}
}
