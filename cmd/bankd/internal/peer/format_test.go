package peer

import (
	"reflect"
	"testing"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/engine"
)

func sampleOutcomes() []node.Outcome {
	return []node.Outcome{
		{Code: engine.CodeOK, Accounts: []engine.Account{
			{Number: "A-1", Name: "Ada", Balance: 90, CreatedIndex: 3, UpdatedIndex: 9},
			{Number: "B-2", Name: "Grace", Balance: 1 << 53, CreatedIndex: 4, UpdatedIndex: 9, Frozen: true},
		}},
		{Code: engine.CodeInsufficientFunds},
		{Code: engine.CodeOK, Replayed: true, Accounts: []engine.Account{{Number: "C", Name: "Ünïcode", Balance: 0, CreatedIndex: 1, UpdatedIndex: 1}}},
		{Code: engine.CodeOK, Token: 7},
		{Code: engine.CodeOK, Accounts: []engine.Account{
			{Number: "A-1", Name: "Ada", Balance: 90, CreatedIndex: 3, UpdatedIndex: 9, Held: 40},
		}, Hold: &engine.Hold{ID: 5, From: "A-1", To: "B-2", Amount: 40, ExpiresMs: 1_700_000_000_000, CreatedIndex: 10, Status: engine.HoldOpen}},
		{Code: engine.CodeOK, Hold: &engine.Hold{ID: 6, From: "A-1", To: "B-2", Amount: 40, Captured: 30, ExpiresMs: -1, CreatedIndex: 10, ClosedIndex: 11, Status: engine.HoldCaptured}},
		{Code: engine.CodeApprovalPending, Approval: &engine.Approval{ID: 3, Op: engine.OpTransfer, Account: "A-1", To: "B-2", Amount: 9_000, By: "ctb1",
			RequestedIndex: 12, ExpiresMs: 1_700_000_000_000, Status: engine.ApprovalPending}},
		{Code: engine.CodeInsufficientFunds, Approval: &engine.Approval{ID: 3, Op: engine.OpTransfer, Account: "A-1", To: "B-2", Amount: 9_000, By: "ctb1",
			RequestedIndex: 12, ExpiresMs: 1_700_000_000_000, ClosedIndex: 13, Status: engine.ApprovalApproved, ClosedBy: "t4", Outcome: engine.CodeInsufficientFunds}},
	}
}

func TestResultRoundTrip(t *testing.T) {
	outs := sampleOutcomes()
	raw, err := EncodeResult(42, outs)
	if err != nil {
		t.Fatal(err)
	}
	index, back, err := DecodeResult(raw, len(outs))
	if err != nil {
		t.Fatal(err)
	}
	if index != 42 || !reflect.DeepEqual(back, outs) {
		t.Fatalf("decoded %d %+v, want 42 %+v", index, back, outs)
	}
}

func TestDecodeResultRejectsDamage(t *testing.T) {
	outs := sampleOutcomes()
	raw, err := EncodeResult(42, outs)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := DecodeResult(raw, len(outs)+1); err == nil {
		t.Fatal("accepted an answer for a different number of commands")
	}
	if _, _, err := DecodeResult(append(raw, 0), len(outs)); err == nil {
		t.Fatal("accepted trailing bytes")
	}
	for n := 0; n < len(raw); n++ {
		if _, _, err := DecodeResult(raw[:n], len(outs)); err == nil {
			t.Fatalf("accepted an answer truncated to %d bytes", n)
		}
	}
	bad, err := EncodeResult(1, []node.Outcome{{Code: engine.Code(200)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := DecodeResult(bad, 1); err == nil {
		t.Fatal("accepted an unknown code")
	}
}

func FuzzDecodeResult(f *testing.F) {
	raw, err := EncodeResult(42, sampleOutcomes())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw, 3)
	f.Fuzz(func(t *testing.T, raw []byte, want int) {
		if want < 0 || want > 100 {
			return
		}
		index, outs, err := DecodeResult(raw, want)
		if err != nil {
			return
		}
		again, err := EncodeResult(index, outs)
		if err != nil {
			t.Fatalf("decoded answer does not encode: %v", err)
		}
		if _, back, err := DecodeResult(again, want); err != nil || !reflect.DeepEqual(back, outs) {
			t.Fatalf("round trip changed the answer: %v", err)
		}
	})
}
