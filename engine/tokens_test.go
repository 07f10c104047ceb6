package engine

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/zkbank/zkbank/engine/entry"
)

// tokenLog applies version 2 entries at chosen times.
type tokenLog struct {
	t  *testing.T
	e  *Engine
	ms int64 // the next entry's time
}

func newTokenLog(t *testing.T) *tokenLog {
	return &tokenLog{t: t, e: newTestEngine(t), ms: 1_800_000_000_000}
}

// apply applies cmds as one entry at the log's time, through the wire
// format.
func (l *tokenLog) apply(cmds ...Command) []Result {
	l.t.Helper()
	e := l.e
	ent := &Entry{Envelope: entry.Envelope{Index: e.Index() + 1, Epoch: max(e.Epoch(), 1), PrevHash: e.LastHash(), TimeMs: l.ms, BodyVersion: BodyV2}, Commands: cmds}
	raw, err := EncodeEntry(ent)
	if err != nil {
		l.t.Fatal(err)
	}
	dec, err := DecodeEntry(raw)
	if err != nil {
		l.t.Fatal(err)
	}
	res, err := e.Apply(dec)
	if err != nil {
		l.t.Fatal(err)
	}
	return res
}

func (l *tokenLog) one(c Command) Result {
	l.t.Helper()
	return l.apply(c)[0]
}

const adminCert = "ca1f00" // an admin's client certificate, serial 1f00

func as(by string, c Command) Command {
	c.Principal = by
	return c
}

func secretHash(s string) [TokenHashLen]byte { return sha256.Sum256([]byte(s)) }

func createToken(name string, role Role, ttlMs uint64, accounts ...string) Command {
	return Command{Op: OpCreateToken, Key: key(), Name: name, Principal: adminCert,
		Token: &TokenSpec{Role: role, Accounts: accounts, TTLMs: ttlMs, Hash: secretHash(name)}}
}

func revokeToken(id uint64) Command {
	return Command{Op: OpRevokeToken, Key: key(), Principal: adminCert, Token: &TokenSpec{ID: id}}
}

// TestEachRoleMayDoWhatItsRoleSaysAtApply: the matrix of roles and ops,
// judged by the engine from the state alone.
func TestEachRoleMayDoWhatItsRoleSaysAtApply(t *testing.T) {
	l := newTokenLog(t)
	l.apply(as(adminCert, create("A", "Ada", 1000)), as(adminCert, create("B", "Bob", 1000)))
	ids := map[Role]uint64{}
	for _, r := range []Role{RoleTeller, RoleAuditor} {
		ids[r] = l.one(createToken(r.String(), r, 0)).Token
	}
	ids[RoleCustomer] = l.one(createToken("ada", RoleCustomer, 0, "A")).Token
	if ids[RoleTeller] != 1 || ids[RoleCustomer] != 3 {
		t.Fatalf("token ids %v, want 1, 2, 3", ids)
	}
	ops := map[string]func() Command{
		"create":   func() Command { return create("", "New", 0) },
		"deposit":  func() Command { return deposit("A", 1) },
		"withdraw": func() Command { return withdraw("A", 1) },
		"transfer": func() Command { return transfer("A", "B", 1) },
		"from B":   func() Command { return transfer("B", "A", 1) },
		"rename":   func() Command { return rename("A", "Ada L") },
		"revoke":   func() Command { return Command{Op: OpRevokeCertificate, Key: key(), Serial: "99"} },
		"token":    func() Command { c := createToken("x", RoleTeller, 0); c.Principal = ""; return c },
	}
	allowed := map[Role]map[string]bool{
		RoleTeller:   {"create": true, "deposit": true, "withdraw": true, "transfer": true, "from B": true, "rename": true},
		RoleAuditor:  {},
		RoleCustomer: {"withdraw": true, "transfer": true},
	}
	for role, id := range ids {
		for name, op := range ops {
			c := as(TokenPrincipal(id), op())
			if c.Token != nil && c.Op == OpCreateToken {
				c.Token.Hash = secretHash(fmt.Sprint(role, name))
			}
			want := CodeForbidden
			if allowed[role][name] {
				want = CodeOK
			}
			if got := l.one(c).Code; got != want {
				t.Errorf("%s %s: %s, want %s", role, name, got, want)
			}
		}
	}
	for name, op := range ops {
		c := as(adminCert, op())
		if c.Op == OpCreateToken {
			c.Token.Hash = secretHash("admin " + name)
		}
		if got := l.one(c).Code; got != CodeOK {
			t.Errorf("admin %s: %s", name, got)
		}
	}
	if got := l.one(as("cu1f01", deposit("A", 1))).Code; got != CodeForbidden {
		t.Errorf("an auditor's certificate depositing: %s", got)
	}
	for _, by := range []string{"t", "t0", "t01", "t99", "x1", "cz1f", "ca", "caXY", "t:7"} {
		if got := l.one(as(by, deposit("A", 1))).Code; got != CodeUnauthenticated {
			t.Errorf("principal %q: %s, want unauthenticated", by, got)
		}
	}
}

// TestARevokedTokenIsRefusedFromItsIndexOn, in the same entry as in later
// ones, and its certificate twin too.
func TestARevokedTokenIsRefusedFromItsIndexOn(t *testing.T) {
	l := newTokenLog(t)
	l.one(as(adminCert, create("A", "Ada", 1000)))
	teller := TokenPrincipal(l.one(createToken("tess", RoleTeller, 0)).Token)
	res := l.apply(as(teller, deposit("A", 1)), revokeToken(1), as(teller, deposit("A", 1)))
	if res[0].Code != CodeOK || res[1].Code != CodeOK || res[2].Code != CodeUnauthenticated {
		t.Fatalf("deposit, revoke, deposit: %s %s %s", res[0].Code, res[1].Code, res[2].Code)
	}
	if tok, _ := l.e.TokenByID(1); tok.RevokedIndex != 3 {
		t.Fatalf("revoked at %d, want 3", tok.RevokedIndex)
	}
	if got := l.one(revokeToken(1)).Code; got != CodeOK {
		t.Fatalf("revoking again: %s", got)
	}
	if tok, _ := l.e.TokenByID(1); tok.RevokedIndex != 3 {
		t.Fatalf("revoking again moved the index to %d", tok.RevokedIndex)
	}
	if got := l.one(revokeToken(42)).Code; got != CodeTokenNotFound {
		t.Fatalf("revoking an unknown token: %s", got)
	}
	l.one(as(adminCert, Command{Op: OpRevokeCertificate, Key: key(), Serial: "1f00"}))
	if got := l.one(as(adminCert, deposit("A", 1))).Code; got != CodeUnauthenticated {
		t.Fatalf("a revoked admin certificate: %s", got)
	}
}

// TestExpiryIsJudgedByTheEntrysTime: a token expires at the first entry
// stamped at or after its end, and an entry stamped earlier than one
// before it (a leader's clock stepped back) does not bring it back.
func TestExpiryIsJudgedByTheEntrysTime(t *testing.T) {
	l := newTokenLog(t)
	l.one(as(adminCert, create("A", "Ada", 1000)))
	start := l.ms
	teller := TokenPrincipal(l.one(createToken("tess", RoleTeller, 60_000)).Token)
	if tok, _ := l.e.TokenByID(1); tok.ExpiresMs != start+60_000 {
		t.Fatalf("expires at %d, want %d", tok.ExpiresMs, start+60_000)
	}
	l.ms = start + 59_999
	if got := l.one(as(teller, deposit("A", 1))).Code; got != CodeOK {
		t.Fatalf("a millisecond before expiry: %s", got)
	}
	l.ms = start + 60_000
	if got := l.one(as(teller, deposit("A", 1))).Code; got != CodeUnauthenticated {
		t.Fatalf("at expiry: %s", got)
	}
	l.ms = start // the next leader's clock is a minute behind
	if got := l.one(as(teller, deposit("A", 1))).Code; got != CodeUnauthenticated {
		t.Fatalf("an entry stamped before the last one revived the token: %s", got)
	}
}

// TestKeysAreScopedByPrincipal: two principals' equal keys are two keys;
// one principal's reuse of its own key is idempotency_key_reused.
func TestKeysAreScopedByPrincipal(t *testing.T) {
	l := newTokenLog(t)
	l.apply(as(adminCert, create("A", "Ada", 1000)), as(adminCert, create("B", "Bob", 1000)))
	tess := TokenPrincipal(l.one(createToken("tess", RoleTeller, 0)).Token)
	tom := TokenPrincipal(l.one(createToken("tom", RoleTeller, 0)).Token)
	d := func(by string, amount uint64) Command {
		return Command{Op: OpDeposit, Key: "same-key", Account: "A", Amount: amount, Principal: by}
	}
	if r := l.one(d(tess, 5)); r.Code != CodeOK || r.Replayed {
		t.Fatalf("tess: %+v", r)
	}
	if r := l.one(d(tom, 7)); r.Code != CodeOK || r.Replayed {
		t.Fatalf("tom with tess's key: %+v (a key must not reach across principals)", r)
	}
	if r := l.one(d(tess, 5)); !r.Replayed {
		t.Fatalf("tess again: %+v, want a replay", r)
	}
	if r := l.one(d(tess, 6)); r.Code != CodeIdempotencyKeyReused {
		t.Fatalf("tess with another command: %s", r.Code)
	}
	if a, _ := l.e.Get("A"); a.Balance != 1012 {
		t.Fatalf("balance %d, want 1012", a.Balance)
	}
}

func TestATokenCommandReplaysItsToken(t *testing.T) {
	l := newTokenLog(t)
	c := createToken("tess", RoleTeller, 0)
	first := l.one(c)
	again := l.one(c)
	if first.Token != 1 || again.Token != 1 || !again.Replayed || len(l.e.Tokens()) != 1 {
		t.Fatalf("first %+v, again %+v, %d tokens", first, again, len(l.e.Tokens()))
	}
}

func TestTokenOpsAreChecked(t *testing.T) {
	l := newTokenLog(t)
	good := func() Command { return createToken("ok", RoleCustomer, 0, "A", "B") }
	for name, bad := range map[string]func(*Command){
		"no role":                  func(c *Command) { c.Token.Role = 0 },
		"unknown role":             func(c *Command) { c.Token.Role = 9 },
		"customer, no accounts":    func(c *Command) { c.Token.Accounts = nil },
		"teller with accounts":     func(c *Command) { c.Token.Role = RoleTeller },
		"accounts out of order":    func(c *Command) { c.Token.Accounts = []string{"B", "A"} },
		"an account twice":         func(c *Command) { c.Token.Accounts = []string{"A", "A"} },
		"a bad account":            func(c *Command) { c.Token.Accounts = []string{"A!"} },
		"no hash":                  func(c *Command) { c.Token.Hash = [TokenHashLen]byte{} },
		"an id":                    func(c *Command) { c.Token.ID = 3 },
		"a lifetime past 10 years": func(c *Command) { c.Token.TTLMs = TokenTTLMax + 1 },
	} {
		c := good()
		bad(&c)
		if got := l.one(c).Code; got != CodeInvalidToken {
			t.Errorf("%s: %s, want invalid_token", name, got)
		}
	}
	c := good()
	c.Name = ""
	if got := l.one(c).Code; got != CodeInvalidName {
		t.Errorf("no name: %s", got)
	}
	if got := l.one(good()).Code; got != CodeOK {
		t.Fatalf("the good one: %s", got)
	}
	if got := l.one(good()).Code; got != CodeInvalidToken {
		t.Errorf("a second token with the same secret: %s", got)
	}
	if _, err := EncodeBody(BodyV1, []Command{good()}); err == nil {
		t.Error("a token op written into a version 1 body")
	}
}

// TestTokensSurviveASnapshot: the state's encoding holds the tokens, and
// a capture taken before a revocation writes the token as it was.
func TestTokensSurviveASnapshot(t *testing.T) {
	l := newTokenLog(t)
	l.one(as(adminCert, create("A", "Ada", 1000)))
	l.one(createToken("ada", RoleCustomer, 3_600_000, "A"))
	l.one(createToken("tess", RoleTeller, 0))
	capture, err := l.e.Capture(nopLock{})
	if err != nil {
		t.Fatal(err)
	}
	var before bytes.Buffer
	if err := capture.WriteState(&before); err != nil {
		t.Fatal(err)
	}
	wantHash := l.e.StateHash()
	l.one(revokeToken(2))
	var during bytes.Buffer
	if err := capture.WriteState(&during); err != nil {
		t.Fatal(err)
	}
	capture.Release()
	if !bytes.Equal(before.Bytes(), during.Bytes()) {
		t.Fatal("a capture's state changed with a revocation after it")
	}
	restored, err := Restore(l.e.Config(), bytes.NewReader(before.Bytes()))
	if err != nil || restored.StateHash() != wantHash {
		t.Fatalf("restore: %v", err)
	}
	ada, ok := restored.TokenByHash(secretHash("ada"))
	if !ok || ada.ID != 1 || ada.Role != RoleCustomer || len(ada.Accounts) != 1 || ada.ExpiresMs == 0 {
		t.Fatalf("restored %+v", ada)
	}
	now, err := Restore(l.e.Config(), bytes.NewReader(stateBytes(t, l.e)))
	if err != nil || now.StateHash() != l.e.StateHash() {
		t.Fatalf("restore now: %v", err)
	}
	if tess, _ := now.TokenByID(2); tess.RevokedIndex == 0 {
		t.Fatal("the revocation was lost in the state")
	}
	if got := now.Authorize(&Command{Op: OpDeposit, Key: "k", Account: "A", Amount: 1, Principal: "t2"}, l.ms); got != CodeUnauthenticated {
		t.Fatalf("the restored engine takes the revoked token: %s", got)
	}
}

func TestPrincipalsReadBack(t *testing.T) {
	for _, by := range []string{TokenPrincipal(1), TokenPrincipal(1 << 40), CertPrincipal(RoleAdmin, "1f"), CertPrincipal(RoleCustomer, "abc")} {
		p, ok := ParsePrincipal(by)
		if !ok {
			t.Errorf("%q does not read back", by)
		}
		if (p.Token == 0) == (by[0] == 't') {
			t.Errorf("%q read as %+v", by, p)
		}
	}
	if CertPrincipal(0, "1f") != "" {
		t.Error("a certificate principal without a role")
	}
}
