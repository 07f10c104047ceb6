package engine

import (
	"bytes"
	"reflect"
	"testing"

	"pgregory.net/rapid"
)

// model is the dumb reference the engine is checked against: maps of
// balances, frozen marks, holds and keys, nothing else.
type model struct {
	balances map[string]uint64
	frozen   map[string]bool
	seen     map[string]modelKey
	minted   uint64 // opening balances + deposits
	burned   uint64 // withdrawals

	holds    map[uint64]*modelHold
	nextHold uint64
	now      int64 // the log's time: the highest stamp so far

	limits       map[Role]uint64
	approvals    map[uint64]*modelApproval
	nextApproval uint64

	// retainMs, when set, is how long a key is remembered after the
	// entry that first used it once it has left the engine's window of
	// one entry and one key; 0: forever.
	retainMs int64
	entry    int            // the entry being applied
	newest   map[int]string // each entry's last new key: the one the window keeps after it
}

// inWindow says whether the engine's window of one entry and one key
// (KeyWindowEntries 1, KeyWindowMax 1) holds k: a key of the entry being
// applied, or the last new key of the entry before, which the window
// keeps until this one ends.
func (m *model) inWindow(scoped string, k modelKey) bool {
	return k.entry == m.entry || k.entry == m.entry-1 && m.newest[k.entry] == scoped
}

type modelApproval struct {
	cmd    Command // as its principal sent it
	status ApprovalStatus
}

type modelHold struct {
	from, to string
	amount   uint64
	expires  int64
	status   HoldStatus
}

// held is what the open holds from an account reserve.
func (m *model) held(number string) uint64 {
	var sum uint64
	for _, h := range m.holds {
		if h.from == number && h.status == HoldOpen {
			sum += h.amount
		}
	}
	return sum
}

// tick moves the log's time to an entry's stamp and expires what is due.
func (m *model) tick(stamp int64) {
	m.now = max(m.now, stamp)
	for _, h := range m.holds {
		if h.status == HoldOpen && h.expires <= m.now {
			h.status = HoldExpired
		}
	}
}

func newModel() *model {
	return &model{balances: map[string]uint64{}, frozen: map[string]bool{}, seen: map[string]modelKey{},
		holds: map[uint64]*modelHold{}, nextHold: 1, newest: map[int]string{}, limits: map[Role]uint64{}, approvals: map[uint64]*modelApproval{}, nextApproval: 1}
}

type modelKey struct {
	cmd   Command // with Key cleared
	code  Code
	entry int   // the entry that first used it
	time  int64 // the log's time then
}

func (m *model) apply(c Command) Code {
	if !ValidKey(c.Key) {
		return CodeInvalidKey
	}
	plain := c
	plain.Key = ""
	scoped := c.Key // each principal's keys are its own
	if c.Principal != "" {
		scoped = c.Principal + "\x00" + c.Key
	}
	if k, ok := m.seen[scoped]; ok && (m.retainMs == 0 || m.inWindow(scoped, k) || m.now < k.time+m.retainMs) {
		if !reflect.DeepEqual(k.cmd, plain) {
			return CodeIdempotencyKeyReused
		}
		return k.code
	}
	code := m.authorize(c)
	if code == CodeOK {
		code = m.run(c)
	}
	m.seen[scoped] = modelKey{cmd: plain, code: code, entry: m.entry, time: m.now}
	m.newest[m.entry] = scoped
	return code
}

// authorize: no principal, or an admin, may do anything; a teller all
// but set a limit (the generator draws nothing else a teller may not).
func (m *model) authorize(c Command) Code {
	switch principalRole(c.Principal) {
	case 0, RoleAdmin:
		return CodeOK
	case RoleTeller:
		if c.Op != OpSetApprovalLimit {
			return CodeOK
		}
	}
	return CodeForbidden
}

func principalRole(by string) Role {
	p, _ := ParsePrincipal(by)
	return p.Role
}

// run keeps a money command above its principal's limit for approval,
// decides approvals, or executes.
func (m *model) run(c Command) Code {
	money := c.Op == OpDeposit || c.Op == OpWithdraw || c.Op == OpTransfer
	if limit := m.limits[principalRole(c.Principal)]; money && limit != 0 && c.Amount > limit && c.Check() == CodeOK {
		m.approvals[m.nextApproval] = &modelApproval{cmd: c, status: ApprovalPending}
		m.nextApproval++
		return CodeApprovalPending
	}
	if code := c.Check(); code != CodeOK {
		return code
	}
	switch c.Op {
	case OpSetApprovalLimit:
		m.limits[c.Token.Role] = c.Amount
		return CodeOK
	case OpApprove, OpReject:
		a, ok := m.approvals[c.Approval]
		switch {
		case !ok:
			return CodeApprovalNotFound
		case a.status != ApprovalPending:
			return CodeApprovalClosed
		case a.cmd.Principal == c.Principal:
			return CodeOwnApproval
		case c.Op == OpReject:
			a.status = ApprovalRejected
			return CodeOK
		}
		a.status = ApprovalApproved
		return m.execute(a.cmd)
	}
	return m.execute(c)
}

func (m *model) execute(c Command) Code {
	if code := c.Check(); code != CodeOK {
		return code
	}
	if c.Op.isHoldOp() {
		return m.executeHold(c)
	}
	bal, exists := m.balances[c.Account]
	if code := m.refuseFrozen(c, exists); code != CodeOK {
		return code
	}
	avail := bal - m.held(c.Account) // what withdrawals and transfers may use
	switch c.Op {
	case OpCreateAccount:
		if exists {
			return CodeAccountExists
		}
		m.balances[c.Account] = c.Amount
		m.minted += c.Amount
	case OpDeposit:
		if !exists {
			return CodeAccountNotFound
		}
		if bal+c.Amount > MaxAmount {
			return CodeLimitExceeded
		}
		m.balances[c.Account] += c.Amount
		m.minted += c.Amount
	case OpWithdraw:
		if !exists {
			return CodeAccountNotFound
		}
		if avail < c.Amount {
			return CodeInsufficientFunds
		}
		m.balances[c.Account] -= c.Amount
		m.burned += c.Amount
	case OpTransfer:
		to, toExists := m.balances[c.To]
		switch {
		case !exists || !toExists:
			return CodeAccountNotFound
		case avail < c.Amount:
			return CodeInsufficientFunds
		case to+c.Amount > MaxAmount:
			return CodeLimitExceeded
		}
		m.balances[c.Account] -= c.Amount
		m.balances[c.To] += c.Amount
	case OpDeleteAccount:
		if !exists {
			return CodeAccountNotFound
		}
		if m.balances[c.Account] != 0 {
			return CodeBalanceNotZero
		}
		delete(m.balances, c.Account)
	case OpRename:
		if !exists {
			return CodeAccountNotFound
		}
	case OpFreezeAccount, OpUnfreezeAccount:
		if !exists {
			return CodeAccountNotFound
		}
		m.frozen[c.Account] = c.Op == OpFreezeAccount
	}
	return CodeOK
}

// executeHold runs a hold op whose fields are valid.
func (m *model) executeHold(c Command) Code {
	if c.Op == OpCreateHold {
		bal, fromOK := m.balances[c.Account]
		_, toOK := m.balances[c.To]
		switch {
		case !fromOK || !toOK:
			return CodeAccountNotFound
		case m.frozen[c.Account] || m.frozen[c.To]:
			return CodeAccountFrozen
		case bal-m.held(c.Account) < c.Amount:
			return CodeInsufficientFunds
		}
		m.holds[m.nextHold] = &modelHold{from: c.Account, to: c.To, amount: c.Amount, expires: m.now + int64(c.ExpiresInMs), status: HoldOpen}
		m.nextHold++
		return CodeOK
	}
	h, ok := m.holds[c.Hold]
	switch {
	case !ok:
		return CodeHoldNotFound
	case h.status == HoldExpired:
		return CodeHoldExpired
	case h.status != HoldOpen:
		return CodeHoldClosed
	case c.Op == OpVoidHold:
		h.status = HoldVoided
		return CodeOK
	}
	amount := c.Amount
	if amount == 0 {
		amount = h.amount
	}
	_, toOK := m.balances[h.to]
	switch {
	case amount > h.amount:
		return CodeCaptureExceedsHold
	case !toOK:
		return CodeAccountNotFound
	case m.frozen[h.from] || m.frozen[h.to]:
		return CodeAccountFrozen
	case m.balances[h.to]+amount > MaxAmount:
		return CodeLimitExceeded
	}
	h.status = HoldCaptured
	m.balances[h.from] -= amount
	m.balances[h.to] += amount
	return CodeOK
}

// refuseFrozen: no money moves in or out of a frozen account, nor does it
// close; an account that does not exist is not found first.
func (m *model) refuseFrozen(c Command, exists bool) Code {
	switch c.Op {
	case OpDeposit, OpWithdraw, OpDeleteAccount:
		if exists && m.frozen[c.Account] {
			return CodeAccountFrozen
		}
	case OpTransfer:
		if _, to := m.balances[c.To]; exists && to && (m.frozen[c.Account] || m.frozen[c.To]) {
			return CodeAccountFrozen
		}
	}
	return CodeOK
}

var (
	genNumber = rapid.SampledFrom([]string{"A", "B", "C", "D", "A", "B", "C", "D", "bad number", ""})
	genAmount = rapid.OneOf(
		rapid.Uint64Range(0, 300),
		rapid.SampledFrom([]uint64{MaxAmount - 1, MaxAmount, MaxAmount + 1, 1 << 63}),
	)
	genFreshKey = rapid.StringMatching(`[a-z0-9]{8}`)
	genKey      = rapid.OneOf(rapid.SampledFrom([]string{"k1", "k2", "k3", ""}), genFreshKey, genFreshKey, genFreshKey)
)

// genCommand draws commands a body of version carries: from version 4
// on, freezes too, and from version 5 holds.
func genCommand(version uint32) *rapid.Generator[Command] {
	ops := []Op{OpCreateAccount, OpDeposit, OpWithdraw, OpTransfer, OpDeleteAccount, OpRename}
	if version >= BodyV4 {
		ops = append(ops, OpFreezeAccount, OpUnfreezeAccount)
	}
	if version >= BodyV5 {
		ops = append(ops, OpCreateAccount, OpDeposit, OpCreateHold, OpCreateHold, OpCreateHold, OpCaptureHold, OpCaptureHold, OpVoidHold,
			OpSetApprovalLimit, OpApprove, OpApprove, OpReject)
	}
	return rapid.Custom(func(t *rapid.T) Command {
		c := Command{
			Op:      rapid.SampledFrom(ops).Draw(t, "op"),
			Key:     genKey.Draw(t, "key"),
			Account: genNumber.Draw(t, "account"),
			Amount:  genAmount.Draw(t, "amount"),
		}
		switch c.Op {
		case OpTransfer:
			c.To = genNumber.Draw(t, "to")
		case OpCreateHold:
			c.Account, c.To = genHoldNumber.Draw(t, "account"), genHoldNumber.Draw(t, "to")
			c.Amount = genHoldAmount.Draw(t, "amount")
			c.ExpiresInMs = rapid.SampledFrom([]uint64{0, 1, 5, 10, 30, HoldTTLMax, HoldTTLMax + 1}).Draw(t, "expires_in")
		case OpCaptureHold, OpVoidHold:
			c.Account = ""
			c.Amount = genHoldAmount.Draw(t, "amount")
			c.Hold = rapid.Uint64Range(0, 6).Draw(t, "hold")
		case OpCreateAccount, OpRename:
			c.Name = rapid.SampledFrom([]string{"Ada", " Bob ", "", "\x01"}).Draw(t, "name")
		case OpSetApprovalLimit:
			c.Account = ""
			c.Token = &TokenSpec{Role: rapid.SampledFrom([]Role{RoleTeller, RoleTeller, RoleCustomer, RoleAdmin}).Draw(t, "role")}
			c.Amount = rapid.SampledFrom([]uint64{0, 10, 50, 100}).Draw(t, "limit")
		case OpApprove, OpReject:
			c.Account, c.Amount = "", 0
			c.Approval = rapid.Uint64Range(0, 4).Draw(t, "approval")
		}
		if version >= BodyV4 { // a version 1 body carries no principal
			c.Principal = genPrincipal.Draw(t, "by")
		}
		if c.Op == OpCreateAccount && c.Account == "" {
			c.Account = "A" // the model does not assign numbers
		}
		return c
	})
}

var (
	genVersion   = rapid.SampledFrom([]uint32{BodyV1, BodyV4, BodyV5, BodyV6})
	genPrincipal = rapid.SampledFrom([]string{"", admin, teller1, teller1, teller2})
	// genHoldAmount draws from few values, so that captures meet their
	// holds' amounts and the balances' edges.
	genHoldAmount = rapid.SampledFrom([]uint64{0, 1, 2, 10, 11, 50, 100, MaxAmount + 1})
	genHoldNumber = rapid.SampledFrom([]string{"A", "B", "C", "D", "bad number"})
	// genStep moves a leader's clock between entries, mostly forward in
	// small steps, so that holds fall due exactly at an entry's time, and
	// sometimes back.
	genStep = rapid.Int64Range(-4, 8)
)

// nextStamp is the time the next entry is stamped with: clock moved a
// step (never below 1).
func nextStamp(t *rapid.T, clock *int64) int64 {
	*clock = max(1, *clock+genStep.Draw(t, "step"))
	return *clock
}

// TestPropertyMatchesModel runs random command sequences, in random
// batches of a random body version stamped at random times, through the
// engine and the model and compares every outcome, every balance, every
// frozen mark, the money invariant and, from version 4, the log's time
// (the highest stamp so far) after each entry.
func TestPropertyMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		version := genVersion.Draw(t, "version")
		e := newTestEngine(t)
		m := newModel()
		opening(t, e, m)
		var latest, clock int64
		for _, batch := range rapid.SliceOfN(rapid.SliceOfN(genCommand(version), 0, 8), 1, 30).Draw(t, "entries") {
			stamp := nextStamp(t, &clock)
			m.tick(stamp)
			res := mustApply(t, e, nextEntryAt(t, e, version, stamp, batch...))
			for i, c := range batch {
				if want := m.apply(c); res[i].Code != want {
					t.Fatalf("%+v: engine %v, model %v", c, res[i].Code, want)
				}
			}
			checkAgainstModel(t, e, m)
			latest = max(latest, stamp)
			if version >= BodyV4 && e.TimeMs() != latest {
				t.Fatalf("the log's time %d after a stamp of %d, want the highest so far, %d", e.TimeMs(), stamp, latest)
			}
		}
	})
}

func checkAgainstModel(t *rapid.T, e *Engine, m *model) {
	var sum uint64
	for _, a := range e.List("", 1000) {
		want, ok := m.balances[a.Number]
		if !ok || a.Balance != want {
			t.Fatalf("account %s: engine %d, model %d (exists %v)", a.Number, a.Balance, want, ok)
		}
		if a.Frozen != m.frozen[a.Number] {
			t.Fatalf("account %s: engine frozen %v, model %v", a.Number, a.Frozen, m.frozen[a.Number])
		}
		if a.Held != m.held(a.Number) || a.Held > a.Balance {
			t.Fatalf("account %s: engine holds %d of %d, model %d", a.Number, a.Held, a.Balance, m.held(a.Number))
		}
		if a.Balance > MaxAmount {
			t.Fatalf("account %s out of bounds: %d", a.Number, a.Balance)
		}
		sum += a.Balance
	}
	if uint64(len(m.balances)) != e.Totals().Accounts {
		t.Fatalf("engine has %d accounts, model %d", e.Totals().Accounts, len(m.balances))
	}
	if sum != m.minted-m.burned || sum != e.Totals().Balance {
		t.Fatalf("money not conserved: sum %d, totals %d, minted-burned %d", sum, e.Totals().Balance, m.minted-m.burned)
	}
	var held uint64
	for id, h := range m.holds {
		got, ok := e.Hold(id)
		if !ok || got.Status != h.status || got.From != h.from || got.To != h.to || got.Amount != h.amount || got.ExpiresMs != h.expires {
			t.Fatalf("hold %d: engine %+v (%v), model %+v", id, got, ok, *h)
		}
		if h.status == HoldOpen {
			held += h.amount
		}
	}
	if e.Totals().Held != held {
		t.Fatalf("engine holds %d in all, model %d", e.Totals().Held, held)
	}
}

// TestPropertyDeterministicAndSnapshotRoundTrip feeds the same entries to
// two engines, restores a third from a snapshot taken midway, and requires
// equal state hashes and equal answers.
func TestPropertyDeterministicAndSnapshotRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		version := genVersion.Draw(t, "version")
		entries := rapid.SliceOfN(rapid.SliceOfN(genCommand(version), 1, 6), 2, 20).Draw(t, "entries")
		cut := rapid.IntRange(0, len(entries)-1).Draw(t, "cut")
		a, b := newTestEngine(t), newTestEngine(t)
		var restored *Engine
		var clock int64
		for i, cmds := range entries {
			if i == cut {
				restored = snapshotRestore(t, a)
			}
			ent := nextEntryAt(t, a, version, nextStamp(t, &clock), cmds...)
			ra := mustApply(t, a, ent)
			rb := mustApply(t, b, ent)
			rr := rb
			if restored != nil {
				rr = mustApply(t, restored, ent)
			}
			for j := range ra {
				if !sameResult(ra[j], rb[j]) || !sameResult(ra[j], rr[j]) {
					t.Fatalf("entry %d command %d: results differ: %+v / %+v / %+v", i, j, ra[j], rb[j], rr[j])
				}
			}
		}
		if a.StateHash() != b.StateHash() || a.StateHash() != restored.StateHash() {
			t.Fatal("state hashes differ")
		}
	})
}

// store is the node's half of keys remembered by time, as the engine's
// contract has it: it keeps what the engine spills and hands back what
// it has of an entry's keys.
type store map[string]KeyRecord

func (s store) apply(t tb, e *Engine, ent *Entry) []Result {
	older := map[string]KeyRecord{}
	for _, k := range e.KeysToFetch(ent) {
		if r, ok := s[k]; ok {
			older[k] = r
		}
	}
	res, err := e.ApplyWith(ent, older)
	if err != nil {
		t.Fatalf("apply %d: %v", ent.Index, err)
	}
	for _, r := range e.TakeSpilled() {
		back, err := UnmarshalKeyRecord(r.Key, r.MarshalValue()) // as a disk keeps it
		if err != nil || back != r {
			t.Fatalf("a spilled record does not round-trip: %+v %v", back, err)
		}
		s[r.Key] = back
	}
	return res
}

// TestPropertyKeysRememberedByTime: with a window of one entry, every key
// leaves memory after its entry and comes back from the store; the model
// remembers each key for retainMs of the log's time (or forever) and
// must agree with the engine on every outcome and balance.
func TestPropertyKeysRememberedByTime(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		retain := rapid.SampledFrom([]int64{5, 20, 1 << 40}).Draw(t, "retain")
		e, err := New(Config{KeyWindowEntries: 1, KeyWindowMax: 1, KeyRetainMs: retain, ClosedHoldsKept: 10})
		if err != nil {
			t.Fatal(err)
		}
		m := newModel()
		m.retainMs = retain
		opening(t, e, m)
		s := store{}
		var clock int64
		for i, batch := range rapid.SliceOfN(rapid.SliceOfN(genCommand(BodyV5), 0, 8), 1, 30).Draw(t, "entries") {
			stamp := nextStamp(t, &clock)
			m.tick(stamp)
			m.entry = i + 1
			res := s.apply(t, e, nextEntryAt(t, e, BodyV6, stamp, batch...))
			for j, c := range batch {
				if want := m.apply(c); res[j].Code != want {
					t.Fatalf("%+v: engine %v, model %v", c, res[j].Code, want)
				}
			}
			checkAgainstModel(t, e, m)
		}
	})
}

// opening creates the accounts A to D with drawn balances in the first
// entry, so that the drawn commands find accounts to act on.
func opening(t *rapid.T, e *Engine, m *model) {
	var cmds []Command
	for _, number := range []string{"A", "B", "C", "D"} {
		cmds = append(cmds, Command{Op: OpCreateAccount, Key: "open-" + number, Account: number, Name: number,
			Amount: rapid.Uint64Range(0, 300).Draw(t, "opening")})
	}
	mustApply(t, e, nextEntryAt(t, e, BodyV1, 1, cmds...))
	for _, c := range cmds {
		m.apply(c)
	}
}

// sameResult compares two results, their holds and approvals by value.
func sameResult(a, b Result) bool {
	if (a.Hold == nil) != (b.Hold == nil) || a.Hold != nil && *a.Hold != *b.Hold ||
		(a.Approval == nil) != (b.Approval == nil) || a.Approval != nil && *a.Approval != *b.Approval {
		return false
	}
	a.Hold, b.Hold, a.Approval, b.Approval = nil, nil, nil, nil
	return a == b
}

func mustApply(t tb, e *Engine, ent *Entry) []Result {
	res, err := e.Apply(ent)
	if err != nil {
		t.Fatalf("apply %d: %v", ent.Index, err)
	}
	return res
}

func snapshotRestore(t tb, e *Engine) *Engine {
	var buf bytes.Buffer
	if err := e.WriteState(&buf); err != nil {
		t.Fatal(err)
	}
	r, err := Restore(e.Config(), bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	var again bytes.Buffer
	if err := r.WriteState(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Fatal("restored state encodes differently")
	}
	return r
}

func TestRestoreRefusesDamagedState(t *testing.T) {
	e := newTestEngine(t)
	apply(t, e, create("A", "Ada", 100), create("B", "Bob", 5), deposit("A", 1))
	var buf bytes.Buffer
	if err := e.WriteState(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	for n := 0; n < len(good); n++ {
		if _, err := Restore(e.Config(), bytes.NewReader(good[:n])); err == nil {
			t.Fatalf("restored a state truncated to %d of %d bytes", n, len(good))
		}
	}
	if _, err := Restore(e.Config(), bytes.NewReader(append(append([]byte{}, good...), 0))); err == nil {
		t.Fatal("restored a state with a trailing byte")
	}
}
