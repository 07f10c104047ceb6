package wire

import (
	"fmt"

	"github.com/zkbank/zkbank/engine"
)

// Describe says in words why a command was refused with code, for a
// problem's detail or a line of bankctl's output.
func Describe(c engine.Command, code engine.Code) string {
	switch code {
	case engine.CodeAccountNotFound:
		if c.To == "" {
			return fmt.Sprintf("no account %q", c.Account)
		}
		return fmt.Sprintf("no account %q (or %q)", c.Account, c.To)
	case engine.CodeAccountExists:
		return fmt.Sprintf("account %q exists", c.Account)
	case engine.CodeInsufficientFunds:
		return fmt.Sprintf("account %q has less than %d available", c.Account, c.Amount)
	case engine.CodeInvalidAmount:
		return fmt.Sprintf("amount %d is outside 1 to %d minor units", c.Amount, engine.MaxAmount)
	case engine.CodeInvalidName:
		if why := engine.NameProblem(c.Name); why != "" {
			return "the name " + why + "; a name is 1 to 200 characters, with no control characters"
		}
		return "a name is 1 to 200 characters, with no control characters"
	case engine.CodeSameAccount:
		return "a transfer or a hold needs two different accounts"
	case engine.CodeBalanceNotZero:
		return fmt.Sprintf("account %q still holds money (or open holds reserve it); withdraw or transfer it, and capture or void its holds, first", c.Account)
	case engine.CodeHoldNotFound:
		return fmt.Sprintf("no hold %d", c.Hold)
	case engine.CodeHoldClosed:
		return fmt.Sprintf("hold %d was captured or voided already", c.Hold)
	case engine.CodeHoldExpired:
		return fmt.Sprintf("hold %d expired: its money is available to its account again", c.Hold)
	case engine.CodeCaptureExceedsHold:
		return fmt.Sprintf("a capture of %d is more than hold %d reserves", c.Amount, c.Hold)
	case engine.CodeInvalidHold:
		if c.Op == engine.OpCreateHold {
			return fmt.Sprintf("expires_in_ms %d is outside 1 to %d (90 days)", c.ExpiresInMs, uint64(engine.HoldTTLMax))
		}
		return "a hold id is 1 or more"
	case engine.CodeApprovalPending:
		return fmt.Sprintf("%s of %d is above the approval limit of its principal's role: not applied, it waits for a second teller or an admin", c.Op, c.Amount)
	case engine.CodeApprovalNotFound:
		return fmt.Sprintf("no approval %d", c.Approval)
	case engine.CodeApprovalClosed:
		return fmt.Sprintf("approval %d was approved or rejected already", c.Approval)
	case engine.CodeApprovalExpired:
		return fmt.Sprintf("approval %d expired (a day after it was asked for): send the command again", c.Approval)
	case engine.CodeOwnApproval:
		return fmt.Sprintf("approval %d was asked for by this principal: another teller or an admin decides it", c.Approval)
	case engine.CodeInvalidApproval:
		if c.Op == engine.OpSetApprovalLimit {
			return "an approval limit is for the teller or the customer role"
		}
		return "an approval id is 1 or more"
	case engine.CodeAccountFrozen:
		if c.Op == engine.OpTransfer || c.Op == engine.OpCreateHold {
			return fmt.Sprintf("account %q or %q is frozen: no money moves in or out until it is unfrozen", c.Account, c.To)
		}
		return fmt.Sprintf("account %q is frozen: no money moves in or out, and it stays open, until it is unfrozen", c.Account)
	case engine.CodeLimitExceeded:
		return fmt.Sprintf("a balance would pass %d", engine.MaxAmount)
	case engine.CodeIdempotencyKeyReused:
		return fmt.Sprintf("key %q was used for a different command", c.Key)
	case engine.CodeInvalidAccount:
		return "an account number is 1 to 34 characters of 0-9, A-Z, a-z and -"
	case engine.CodeInvalidKey:
		return "an idempotency key is 1 to 64 bytes"
	case engine.CodeInvalidSerial:
		return fmt.Sprintf("serial %q is not a certificate serial: 1 to 32 lower-case hex digits, as bankctl certs prints it", c.Serial)
	}
	return code.String()
}
