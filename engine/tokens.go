package engine

import (
	"sort"
	"strconv"
	"strings"
)

// Role is what a principal may do. The numbers are part of the log and
// state formats: never renumber, only append.
type Role uint8

// Roles. Zero is invalid.
const (
	RoleAdmin    Role = 1 // everything, tokens and certificates included
	RoleTeller   Role = 2 // every account operation and read
	RoleAuditor  Role = 3 // every read; no writes
	RoleCustomer Role = 4 // its accounts only: reads them, moves money only out of them
	roleEnd           = 5
)

var roleNames = [roleEnd]string{"", "admin", "teller", "auditor", "customer"}

// roleLetters name a role in a certificate principal.
const roleLetters = " atuc"

func (r Role) String() string {
	if r.Valid() {
		return roleNames[r]
	}
	return "role(" + strconv.Itoa(int(r)) + ")"
}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r > 0 && r < roleEnd }

// ParseRole maps a role's name to it.
func ParseRole(name string) (Role, bool) {
	for r := RoleAdmin; r < roleEnd; r++ {
		if roleNames[r] == name {
			return r, true
		}
	}
	return 0, false
}

// Limits of tokens, part of the replicated protocol.
const (
	TokensMax        = 100_000 // tokens the state holds, revoked ones included
	TokenAccountsMax = 100     // accounts a customer's token is bound to
	TokenNameLenMax  = 64      // bytes
	TokenTTLMax      = 10 * 365 * 24 * 3600 * 1000
	TokenHashLen     = 32 // SHA-256 of the secret
)

// TokenSpec carries the fields of the token ops: create_token (Role,
// Accounts, TTLMs, Hash; the command's Name names the token) and
// revoke_token (ID).
type TokenSpec struct {
	Role     Role
	Accounts []string // a customer's accounts; empty for the other roles
	TTLMs    uint64   // lifetime from the creating entry's time; 0: no expiry
	Hash     [TokenHashLen]byte
	ID       uint64
}

// Token is a token as the state holds it (never its secret).
type Token struct {
	ID           uint64
	Name         string
	Role         Role
	Accounts     []string // sorted
	ExpiresMs    int64    // entry time from which it is refused; 0: never
	CreatedIndex uint64
	RevokedIndex uint64 // 0 while it is in force
	Hash         [TokenHashLen]byte
}

// tokens is the set of API tokens, replicated like every other part of
// the state: created and revoked through the log, so every node takes or
// refuses a token from the same index on.
type tokens struct {
	byID   map[uint64]*Token
	byHash map[[TokenHashLen]byte]uint64
	next   uint64 // id of the next token; ids start at 1
}

func (t *tokens) add(tok *Token) {
	if t.byID == nil {
		t.byID, t.byHash = map[uint64]*Token{}, map[[TokenHashLen]byte]uint64{}
	}
	t.byID[tok.ID] = tok
	t.byHash[tok.Hash] = tok.ID
}

// sorted lists the tokens in id order (the state's encoding).
func (t *tokens) sorted() []*Token {
	out := make([]*Token, 0, len(t.byID))
	for _, tok := range t.byID {
		out = append(out, tok)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// TokenByHash finds the token whose secret hashes to h.
func (e *Engine) TokenByHash(h [TokenHashLen]byte) (Token, bool) {
	id, ok := e.tokens.byHash[h]
	if !ok {
		return Token{}, false
	}
	return *e.tokens.byID[id], true
}

// TokenByID finds a token by its id.
func (e *Engine) TokenByID(id uint64) (Token, bool) {
	tok, ok := e.tokens.byID[id]
	if !ok {
		return Token{}, false
	}
	return *tok, true
}

// Tokens lists every token, revoked ones included, in id order.
func (e *Engine) Tokens() []Token {
	list := e.tokens.sorted()
	out := make([]Token, len(list))
	for i, tok := range list {
		out[i] = *tok
	}
	return out
}

// Principal is who sent a command, as the command's compact "by" field
// names it: a token ("t<id>"), or a client certificate ("c", a letter for
// its role, and its serial), so that the engine can check at apply that
// it still holds. An empty "by" is no principal: a version 1 body, or a
// cluster run with --insecure.
type Principal struct {
	Token  uint64 // a token's id; 0 for a certificate
	Serial string // a certificate's serial
	Role   Role   // a certificate's role
}

// TokenPrincipal is the "by" of a token's commands.
func TokenPrincipal(id uint64) string { return "t" + strconv.FormatUint(id, 10) }

// CertPrincipal is the "by" of a client certificate's commands.
func CertPrincipal(role Role, serial string) string {
	if !role.Valid() {
		return ""
	}
	return "c" + roleLetters[role:role+1] + serial
}

// ParsePrincipal reads a "by" field.
func ParsePrincipal(by string) (Principal, bool) {
	switch {
	case strings.HasPrefix(by, "t"):
		id, err := strconv.ParseUint(by[1:], 10, 64)
		return Principal{Token: id}, err == nil && id > 0 && TokenPrincipal(id) == by
	case strings.HasPrefix(by, "c") && len(by) > 2:
		r := Role(strings.IndexByte(roleLetters, by[1]))
		return Principal{Serial: by[2:], Role: r}, r.Valid() && ValidSerial(by[2:])
	}
	return Principal{}, false
}

// PrincipalName says who a "by" field names, for people: a token's name
// and id, or a certificate's serial and role ("" for no principal). A
// token's name is in the log (its create_token), so it is part of the
// hash chain.
func (e *Engine) PrincipalName(by string) string {
	if by == "" {
		return ""
	}
	p, ok := ParsePrincipal(by)
	switch {
	case !ok:
		return "unknown principal " + strconv.Quote(by)
	case p.Token == 0:
		return "certificate " + p.Serial + " (" + p.Role.String() + ")"
	}
	if t, ok := e.tokens.byID[p.Token]; ok {
		return t.Name + " (token " + strconv.FormatUint(t.ID, 10) + ", " + t.Role.String() + ")"
	}
	return "token " + strconv.FormatUint(p.Token, 10)
}

// Authorize says whether c's principal may run c now (nowMs: the time of
// the entry being applied, or of the last one applied for a check before
// the log): CodeUnauthenticated for a principal that is unknown, revoked
// or expired, CodeForbidden for one whose role or accounts do not cover
// c. The API checks with it before the log, and Apply again at the
// command's index, so that a revocation holds from one index on.
func (e *Engine) Authorize(c *Command, nowMs int64) Code {
	if c.Principal == "" {
		return CodeOK
	}
	p, ok := ParsePrincipal(c.Principal)
	if !ok {
		return CodeUnauthenticated
	}
	if p.Token == 0 {
		if _, revoked := e.revoked.bySerial[p.Serial]; revoked {
			return CodeUnauthenticated
		}
		return e.permits(p.Role, nil, c)
	}
	tok, ok := e.tokens.byID[p.Token]
	if !ok || tok.RevokedIndex != 0 || (tok.ExpiresMs != 0 && nowMs >= tok.ExpiresMs) {
		return CodeUnauthenticated
	}
	return e.permits(tok.Role, tok.Accounts, c)
}

// permits is Permits with the account a capture or void moves money out
// of read from the hold it names.
func (e *Engine) permits(role Role, accounts []string, c *Command) Code {
	from := c.Account
	if c.Op.isHoldOp() {
		from = e.holdFrom(c)
	}
	return permitsFrom(role, accounts, c.Op, from)
}

// Permits says whether a principal of role, bound to accounts (sorted; a
// customer's), may run c: CodeOK or CodeForbidden. A customer may move
// money out of its accounts only: withdraw, transfer, and create, capture
// or void a hold from them (Engine.Authorize finds a hold's from; here a
// capture or void names none, so a customer is refused).
func Permits(role Role, accounts []string, c *Command) Code {
	return permitsFrom(role, accounts, c.Op, c.Account)
}

func permitsFrom(role Role, accounts []string, op Op, from string) Code {
	ok := false
	switch role {
	case RoleAdmin:
		ok = true
	case RoleTeller:
		ok = op.namesAccounts()
	case RoleCustomer:
		ok = (op == OpWithdraw || op == OpTransfer || op.isHoldOp()) && Owns(accounts, from)
	}
	if ok {
		return CodeOK
	}
	return CodeForbidden
}

// Owns reports whether accounts (sorted) holds number.
func Owns(accounts []string, number string) bool {
	i := sort.SearchStrings(accounts, number)
	return i < len(accounts) && accounts[i] == number
}

// checkToken validates a token op's fields.
func checkToken(c *Command) Code {
	t := c.Token
	if t == nil {
		return CodeInvalidToken
	}
	if c.Op == OpRevokeToken {
		if t.ID == 0 || t.Role != 0 || len(t.Accounts) != 0 || t.TTLMs != 0 || t.Hash != ([TokenHashLen]byte{}) {
			return CodeInvalidToken
		}
		return CodeOK
	}
	if _, ok := NormalizeName(c.Name); !ok || len(c.Name) > TokenNameLenMax {
		return CodeInvalidName
	}
	switch {
	case t.ID != 0 || !t.Role.Valid() || t.TTLMs > TokenTTLMax || t.Hash == ([TokenHashLen]byte{}):
		return CodeInvalidToken
	case (t.Role == RoleCustomer) != (len(t.Accounts) > 0), len(t.Accounts) > TokenAccountsMax:
		return CodeInvalidToken
	}
	for i, a := range t.Accounts {
		if !ValidAccountNumber(a) || (i > 0 && a <= t.Accounts[i-1]) {
			return CodeInvalidToken // sorted and unique, so that the encoding is canonical
		}
	}
	return CodeOK
}

// createToken adds a token; its id is the next one.
func (e *Engine) createToken(index uint64, nowMs int64, c *Command) Result {
	if code := checkToken(c); code != CodeOK {
		return rejected(code)
	}
	if len(e.tokens.byID) >= TokensMax {
		return rejected(CodeLimitExceeded)
	}
	if _, dup := e.tokens.byHash[c.Token.Hash]; dup {
		return rejected(CodeInvalidToken)
	}
	e.tokens.next = max(e.tokens.next, 1)
	name, _ := NormalizeName(c.Name)
	tok := &Token{ID: e.tokens.next, Name: name, Role: c.Token.Role, Accounts: append([]string(nil), c.Token.Accounts...),
		CreatedIndex: index, Hash: c.Token.Hash}
	if c.Token.TTLMs != 0 {
		tok.ExpiresMs = nowMs + int64(c.Token.TTLMs)
	}
	e.tokens.next++
	e.tokens.add(tok)
	return Result{Code: CodeOK, Token: tok.ID}
}

// revokeToken ends a token from this index on. Revoking it again is ok
// and keeps the first index.
func (e *Engine) revokeToken(index uint64, c *Command) Result {
	if code := checkToken(c); code != CodeOK {
		return rejected(code)
	}
	tok, ok := e.tokens.byID[c.Token.ID]
	if !ok {
		return rejected(CodeTokenNotFound)
	}
	if tok.RevokedIndex == 0 {
		tok.RevokedIndex = index
	}
	return Result{Code: CodeOK, Token: tok.ID}
}

// keyScopeSep separates a scoped key's principal from the key (the
// idempotency window files a command under its principal's key, so that
// one principal's key can neither collide with nor reveal another's).
const keyScopeSep = "\x00"

// validScopedKey reports whether k is a key as the window holds it: a
// client's key, after its principal (whatever the command said, parsed
// or not) and keyScopeSep when it has one. A key has no zero byte
// (ValidKey), so the last one ends the principal.
func validScopedKey(k string) bool {
	i := strings.LastIndexByte(k, 0)
	if i < 0 {
		return ValidKey(k)
	}
	return i > 0 && i <= PrincipalLenMax && ValidKey(k[i+1:])
}
