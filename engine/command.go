package engine

import "fmt"

// Op names a command. The numbers are part of the log format: never
// renumber, only append.
type Op uint8

// Commands. Zero is invalid.
const (
	OpInvalid       Op = 0
	OpCreateAccount Op = 1
	OpDeposit       Op = 2
	OpWithdraw      Op = 3
	OpTransfer      Op = 4
	OpDeleteAccount Op = 5
	OpRename        Op = 6
	// Body version 2 and later:
	OpRevokeCertificate Op = 7
	OpCreateToken       Op = 8
	OpRevokeToken       Op = 9
	// Body version 4 and later:
	OpFreezeAccount   Op = 10
	OpUnfreezeAccount Op = 11
	// Body version 5 and later:
	OpCreateHold  Op = 12
	OpCaptureHold Op = 13
	OpVoidHold    Op = 14
	// And the four eyes:
	OpSetApprovalLimit Op = 15
	OpApprove          Op = 16
	OpReject           Op = 17
	opEnd                 = 18
)

var opNames = [opEnd]string{
	OpInvalid:       "invalid",
	OpCreateAccount: "create_account",
	OpDeposit:       "deposit",
	OpWithdraw:      "withdraw",
	OpTransfer:      "transfer",
	OpDeleteAccount: "delete_account",
	OpRename:        "rename",

	OpRevokeCertificate: "revoke_certificate",
	OpCreateToken:       "create_token",
	OpRevokeToken:       "revoke_token",

	OpFreezeAccount:   "freeze_account",
	OpUnfreezeAccount: "unfreeze_account",

	OpCreateHold:  "create_hold",
	OpCaptureHold: "capture_hold",
	OpVoidHold:    "void_hold",

	OpSetApprovalLimit: "set_approval_limit",
	OpApprove:          "approve",
	OpReject:           "reject",
}

// String returns the API name of the op.
func (o Op) String() string {
	if o < opEnd {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Valid reports whether o is a known command.
func (o Op) Valid() bool { return o > OpInvalid && o < opEnd }

// ParseOp maps an API name to its Op.
func ParseOp(name string) (Op, bool) {
	for o := OpCreateAccount; o < opEnd; o++ {
		if opNames[o] == name {
			return o, true
		}
	}
	return OpInvalid, false
}

// Command is one client request as it travels in the log. Which fields
// matter depends on Op:
//
//	create_account  Account (optional), Name, Amount (opening balance, may be 0)
//	deposit         Account, Amount
//	withdraw        Account, Amount
//	transfer        Account (from), To, Amount
//	delete_account  Account
//	rename          Account, Name
//	revoke_certificate  Serial (body version 2 and later, as the rest)
//	create_token    Name, Token (Role, Accounts, TTLMs, Hash)
//	revoke_token    Token (ID)
//	freeze_account  Account (body version 4 and later, as the next)
//	unfreeze_account Account
//	create_hold     Account (from), To, Amount, ExpiresInMs (body version 5 and later, as the next two)
//	capture_hold    Hold, Amount (0: all of it)
//	void_hold       Hold
//	set_approval_limit Token (Role), Amount (the limit; 0: none)
//	approve, reject Approval
//
// Key is the idempotency key; every command must carry one. Principal
// names who sent it, compactly (ParsePrincipal); bodies of version 2 and
// later carry it.
type Command struct {
	Op        Op
	Key       string
	Account   string
	To        string
	Name      string
	Amount    uint64
	Serial    string // a certificate's serial, lower-case hex
	Principal string
	Token     *TokenSpec // the token ops' fields; nil for the others
	// Hold names the hold a capture or void acts on.
	Hold uint64
	// ExpiresInMs is how long a create_hold holds, from its entry's
	// effective time.
	ExpiresInMs uint64
	// Approval names the approval an approve or reject decides.
	Approval uint64
}

// opsIn is the last op a body version carries.
func opsIn(version uint32) Op {
	switch {
	case version <= BodyV1:
		return OpRename
	case version <= BodyV3:
		return OpRevokeToken
	case version <= BodyV4:
		return OpUnfreezeAccount
	}
	return opEnd - 1
}

// namesAccounts reports whether an op names accounts (its result carries
// them): the account, hold and decision ops, which a teller may run.
func (o Op) namesAccounts() bool {
	return o >= OpCreateAccount && o <= OpRename || o >= OpFreezeAccount && o <= OpVoidHold || o == OpApprove || o == OpReject
}

// isHoldOp reports whether an op creates, captures or voids a hold (its
// result carries the hold).
func (o Op) isHoldOp() bool { return o >= OpCreateHold && o <= OpVoidHold }

// isFreeze reports whether an op freezes or unfreezes an account.
func (o Op) isFreeze() bool { return o == OpFreezeAccount || o == OpUnfreezeAccount }

// isTokenOp reports whether an op creates or revokes a token (its result
// carries the token's id).
func (o Op) isTokenOp() bool { return o == OpCreateToken || o == OpRevokeToken }

// Check validates what can be validated without state, returning the code
// Apply would give. Servers use it to refuse bad input before it reaches the
// log; Apply runs the same checks, so the log stays authoritative.
func (c *Command) Check() Code {
	if !ValidKey(c.Key) {
		return CodeInvalidKey
	}
	switch c.Op {
	case OpCreateAccount:
		return checkCreate(c)
	case OpDeposit, OpWithdraw:
		return firstFailure(checkNumber(c.Account), checkAmount(c.Amount))
	case OpTransfer:
		code := firstFailure(checkNumber(c.Account), checkNumber(c.To), checkAmount(c.Amount))
		if code == CodeOK && c.Account == c.To {
			return CodeSameAccount
		}
		return code
	case OpDeleteAccount, OpFreezeAccount, OpUnfreezeAccount:
		return checkNumber(c.Account)
	case OpRename:
		return firstFailure(checkNumber(c.Account), checkName(c.Name))
	case OpRevokeCertificate:
		return checkSerial(c.Serial)
	case OpCreateToken, OpRevokeToken:
		return checkToken(c)
	case OpCreateHold, OpCaptureHold, OpVoidHold:
		return checkHold(c)
	case OpSetApprovalLimit, OpApprove, OpReject:
		return checkApproval(c)
	}
	return CodeInvalid
}

// checkSerial: a certificate serial as certs renders it, 1..32 lower-case
// hex digits without leading zeros.
func checkSerial(s string) Code {
	if ValidSerial(s) {
		return CodeOK
	}
	return CodeInvalidSerial
}

// ValidSerial reports whether s is a serial as the log names one: 1..32
// lower-case hex digits, no leading zero.
func ValidSerial(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func checkCreate(c *Command) Code {
	num := CodeOK
	if c.Account != "" {
		num = checkNumber(c.Account)
	}
	opening := CodeOK
	if c.Amount > MaxAmount {
		opening = CodeInvalidAmount
	}
	return firstFailure(num, checkName(c.Name), opening)
}

func checkNumber(n string) Code {
	if ValidAccountNumber(n) {
		return CodeOK
	}
	return CodeInvalidAccount
}

func checkAmount(a uint64) Code {
	if ValidAmount(a) {
		return CodeOK
	}
	return CodeInvalidAmount
}

func checkName(n string) Code {
	if _, ok := NormalizeName(n); ok {
		return CodeOK
	}
	return CodeInvalidName
}

func firstFailure(codes ...Code) Code {
	for _, c := range codes {
		if c != CodeOK {
			return c
		}
	}
	return CodeOK
}

// fingerprint identifies a command apart from its key, so that a retry can
// be told from a different command that reuses the key (FNV-1a, 64 bits).
func (c *Command) fingerprint() uint64 {
	h := uint64(14695981039346656037)
	mix := func(b byte) {
		h ^= uint64(b)
		h *= 1099511628211
	}
	str := func(s string) {
		for i := 0; i < len(s); i++ {
			mix(s[i])
		}
		mix(0xff) // separator: no valid UTF-8 string contains 0xff
	}
	mix(byte(c.Op))
	str(c.Account)
	str(c.To)
	str(c.Name)
	str(c.Serial)
	u64 := func(v uint64) {
		for i := 0; i < 8; i++ {
			mix(byte(v >> (8 * i)))
		}
	}
	u64(c.Amount)
	if t := c.Token; t != nil {
		mix(byte(t.Role))
		for _, a := range t.Accounts {
			str(a)
		}
		u64(t.TTLMs)
		u64(t.ID)
		for _, b := range t.Hash {
			mix(b)
		}
	}
	if c.Hold != 0 || c.ExpiresInMs != 0 || c.Approval != 0 { // only then: older commands keep their fingerprints
		mix(0xfe)
		u64(c.Hold)
		u64(c.ExpiresInMs)
		u64(c.Approval)
	}
	return h
}
