package faults

import (
	"fmt"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// step is one account's view of an operation: money leaves (debit),
// arrives (credit), or is read.
type step struct {
	Kind   string // debit, credit, read
	Amount uint64
}

// seen is what the answer said about the account.
type seen struct {
	Outcome string
	Balance uint64 // after the operation (ok) or as read
}

// accountModel is the sequential specification of one account, a
// balance. Unknown outcomes may or may not have happened.
var accountModel = porcupine.NondeterministicModel{
	Init: func() []any { return nil }, // replaced per account with its opening balance
	Step: func(state, input, output any) []any {
		bal, in, out := state.(uint64), input.(step), output.(seen)
		switch in.Kind {
		case "read":
			if out.Balance == bal {
				return []any{bal}
			}
		case "credit":
			switch out.Outcome {
			case OutcomeOK:
				if bal+in.Amount == out.Balance {
					return []any{bal + in.Amount}
				}
			case OutcomeUnknown:
				return []any{bal, bal + in.Amount}
			}
		case "debit":
			switch out.Outcome {
			case OutcomeOK:
				if bal >= in.Amount && bal-in.Amount == out.Balance {
					return []any{bal - in.Amount}
				}
			case "insufficient_funds":
				if bal < in.Amount {
					return []any{bal}
				}
			case OutcomeUnknown:
				if bal >= in.Amount {
					return []any{bal, bal - in.Amount}
				}
				return []any{bal}
			}
		}
		return nil
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(step), output.(seen)
		return fmt.Sprintf("%s %d -> %s %d", in.Kind, in.Amount, out.Outcome, out.Balance)
	},
}

// accountOps turns the history into one porcupine history per account.
// Operations with an unknown outcome stay open until the end.
func accountOps(ops []Op, end int64) map[string][]porcupine.Operation {
	per := map[string][]porcupine.Operation{}
	add := func(op Op, account string, s step, out seen) {
		ret := op.Return
		if op.Outcome == OutcomeUnknown {
			ret = end
		}
		per[account] = append(per[account], porcupine.Operation{ClientId: op.Worker, Input: s, Call: op.Call, Output: out, Return: ret})
	}
	for _, op := range ops {
		out := func(acct string) seen { return seen{Outcome: op.Outcome, Balance: op.Balances[acct]} }
		switch op.Kind {
		case KindDeposit:
			if op.Outcome == OutcomeOK || op.Outcome == OutcomeUnknown {
				add(op, op.Account, step{"credit", op.Amount}, out(op.Account))
			}
		case KindWithdraw:
			add(op, op.Account, step{"debit", op.Amount}, out(op.Account))
		case KindTransfer:
			add(op, op.Account, step{"debit", op.Amount}, out(op.Account))
			if op.Outcome == OutcomeOK || op.Outcome == OutcomeUnknown {
				add(op, op.To, step{"credit", op.Amount}, out(op.To))
			}
		case KindRead:
			if op.Outcome == OutcomeOK {
				add(op, op.Account, step{"read", 0}, out(op.Account))
			}
		}
	}
	return per
}

// Linearizable checks every account's history against accountModel,
// starting from its opening balance. An account whose check does not
// finish within timeout is reported in unchecked, not as a failure.
func Linearizable(ops []Op, opening map[string]uint64, timeout time.Duration) (unchecked []string, err error) {
	end := int64(0)
	for _, op := range ops {
		end = max(end, op.Return+1)
	}
	per := accountOps(ops, end)
	accounts := make([]string, 0, len(per))
	for a := range per {
		accounts = append(accounts, a)
	}
	sort.Strings(accounts)
	for _, a := range accounts {
		m := accountModel
		open := opening[a]
		m.Init = func() []any { return []any{open} }
		res, _ := porcupine.CheckOperationsVerbose(m.ToModel(), per[a], timeout)
		switch res {
		case porcupine.Illegal:
			return unchecked, fmt.Errorf("faults: account %s: history of %d operations is not linearizable", a, len(per[a]))
		case porcupine.Unknown:
			unchecked = append(unchecked, a)
		}
	}
	return unchecked, nil
}
