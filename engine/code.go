package engine

// Code is the outcome of one command. The numbers are part of the log and
// snapshot formats and of the API: never renumber, only append.
type Code uint8

// Outcome codes. Zero is invalid so that a forgotten assignment is caught.
const (
	CodeInvalid              Code = 0
	CodeOK                   Code = 1
	CodeAccountExists        Code = 2
	CodeAccountNotFound      Code = 3
	CodeInsufficientFunds    Code = 4
	CodeInvalidAmount        Code = 5
	CodeInvalidName          Code = 6
	CodeSameAccount          Code = 7
	CodeBalanceNotZero       Code = 8
	CodeLimitExceeded        Code = 9
	CodeIdempotencyKeyReused Code = 10
	CodeInvalidAccount       Code = 11
	CodeInvalidKey           Code = 12
	CodeInvalidSerial        Code = 13
	CodeUnauthenticated      Code = 14 // the principal is unknown, revoked or expired
	CodeForbidden            Code = 15 // the principal's role or accounts do not cover the command
	CodeInvalidToken         Code = 16 // a token op's role, accounts, lifetime or hash is bad
	CodeTokenNotFound        Code = 17
	CodeAccountFrozen        Code = 18 // money may not move in or out of a frozen account
	CodeHoldNotFound         Code = 19 // no hold has this id
	CodeHoldClosed           Code = 20 // the hold was captured or voided
	CodeHoldExpired          Code = 21 // the hold expired before the command
	CodeCaptureExceedsHold   Code = 22 // a capture of more than the hold reserves
	CodeInvalidHold          Code = 23 // a hold op's id or expiry is out of range
	CodeApprovalPending      Code = 24 // not applied: kept for a second principal to approve
	CodeApprovalNotFound     Code = 25 // no approval has this id
	CodeApprovalClosed       Code = 26 // the approval was approved or rejected
	CodeApprovalExpired      Code = 27 // the approval expired before the command
	CodeOwnApproval          Code = 28 // a principal may not decide its own approval
	CodeInvalidApproval      Code = 29 // an approval op's id or role is out of range
	codeEnd                       = 30
)

var codeNames = [codeEnd]string{
	CodeInvalid:              "invalid",
	CodeOK:                   "ok",
	CodeAccountExists:        "account_exists",
	CodeAccountNotFound:      "account_not_found",
	CodeInsufficientFunds:    "insufficient_funds",
	CodeInvalidAmount:        "invalid_amount",
	CodeInvalidName:          "invalid_name",
	CodeSameAccount:          "same_account",
	CodeBalanceNotZero:       "balance_not_zero",
	CodeLimitExceeded:        "limit_exceeded",
	CodeIdempotencyKeyReused: "idempotency_key_reused",
	CodeInvalidAccount:       "invalid_account",
	CodeInvalidKey:           "invalid_key",
	CodeInvalidSerial:        "invalid_serial",
	CodeUnauthenticated:      "unauthenticated",
	CodeForbidden:            "forbidden",
	CodeInvalidToken:         "invalid_token",
	CodeTokenNotFound:        "token_not_found",
	CodeAccountFrozen:        "account_frozen",
	CodeHoldNotFound:         "hold_not_found",
	CodeHoldClosed:           "hold_closed",
	CodeHoldExpired:          "hold_expired",
	CodeCaptureExceedsHold:   "capture_exceeds_hold",
	CodeInvalidHold:          "invalid_hold",
	CodeApprovalPending:      "approval_pending",
	CodeApprovalNotFound:     "approval_not_found",
	CodeApprovalClosed:       "approval_closed",
	CodeApprovalExpired:      "approval_expired",
	CodeOwnApproval:          "own_approval",
	CodeInvalidApproval:      "invalid_approval",
}

// String returns the stable snake_case name used in the API.
func (c Code) String() string {
	if c < codeEnd {
		return codeNames[c]
	}
	return "invalid"
}

// Valid reports whether c is a known outcome other than CodeInvalid.
func (c Code) Valid() bool { return c > CodeInvalid && c < codeEnd }

// Codes lists every valid outcome in numeric order.
func Codes() []Code {
	out := make([]Code, 0, codeEnd-1)
	for c := CodeOK; c < codeEnd; c++ {
		out = append(out, c)
	}
	return out
}

// ParseCode maps an API name back to its Code.
func ParseCode(name string) (Code, bool) {
	for c := CodeOK; c < codeEnd; c++ {
		if codeNames[c] == name {
			return c, true
		}
	}
	return CodeInvalid, false
}
