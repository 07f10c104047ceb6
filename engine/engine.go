package engine

import (
	"errors"
	"fmt"
)

// Replication faults returned by Apply. Each means the caller fed the engine
// something other than the next entry of the one true log.
var (
	ErrOutOfOrder     = errors.New("engine: entry out of order")
	ErrChainBroken    = errors.New("engine: prev_hash does not match the last applied entry")
	ErrEpochRegressed = errors.New("engine: entry epoch lower than the last applied")
	ErrBodyRegressed  = errors.New("engine: entry body version lower than the log's")
)

// Result is the outcome of one command: its Code and, when it succeeded, the
// states of the accounts it touched after it ran (for a transfer: from, to).
type Result struct {
	Code Code
	// Replayed is set when the key had been seen with the same command and
	// this is the first outcome, answered again without changing anything.
	Replayed bool
	// Token is the id of the token a create_token made or a revoke_token
	// revoked.
	Token uint64
	// Hold is the hold a hold op created, captured or voided, as it was
	// after the command (on a replay: as it is now, while the state
	// remembers it); nil for the other ops.
	Hold *Hold
	// Approval is the approval a command above its limit asked for, or an
	// approve or reject decided; nil otherwise.
	Approval *Approval

	accounts [2]Account
	n        uint8
}

// Accounts returns the states of the accounts the command touched.
func (r *Result) Accounts() []Account { return r.accounts[:r.n] }

func (r *Result) add(a Account) {
	r.accounts[r.n] = a
	r.n++
}

func rejected(c Code) Result { return Result{Code: c} }

// Totals summarises the state.
type Totals struct {
	Accounts uint64
	Balance  uint64
	Held     uint64 // of Balance, what open holds reserve
}

// Engine is the bank's state machine. The zero value is not usable; call New.
type Engine struct {
	cfg Config

	index    uint64 // last applied entry
	epoch    uint64 // epoch of the last applied entry
	lastHash Hash   // hash of the last applied entry
	timeMs   int64  // leader time of the last applied entry
	// bodyVersion is the log's body version: the highest of any entry
	// applied (1 before any); versionSince the index where it began.
	bodyVersion  uint32
	versionSince uint64

	accounts *accountTable
	nextNum  uint64 // next candidate for an assigned account number
	totals   Totals

	keys      keyWindow
	revoked   revocations
	tokens    tokens
	holds     *holdTable
	approvals *approvalTable
	signer    Signer

	keyBuf []byte // scratch for scoped keys

	older   map[string]KeyRecord // during ApplyWith: the records the node found of the entry's keys
	spilled []KeyRecord          // records that left the window still remembered by time, for TakeSpilled
}

// Signer is who signs the entries of an epoch of a sealed log: the node
// certificate (DER) its term entry carried. Zero before the first term
// entry.
type Signer struct {
	Epoch uint64
	Cert  []byte
}

// Signer is the signer of the newest epoch that has a term entry: the one
// every entry after the last applied must be signed by, unless it starts
// a new epoch.
func (e *Engine) Signer() Signer { return e.signer }

// New returns an empty engine at index 0.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newEngine(cfg), nil
}

func newEngine(cfg Config) *Engine {
	return &Engine{
		cfg:       cfg,
		accounts:  newAccountTable(0),
		nextNum:   1,
		keys:      newKeyWindow(),
		holds:     newHoldTable(cfg.ClosedHoldsKept),
		approvals: newApprovalTable(cfg.ClosedHoldsKept),

		bodyVersion: BodyV1,
	}
}

// Index is the index of the last applied entry (0 before any).
func (e *Engine) Index() uint64 { return e.index }

// Epoch is the epoch of the last applied entry.
func (e *Engine) Epoch() uint64 { return e.epoch }

// LastHash is the hash of the last applied entry (zero before any).
func (e *Engine) LastHash() Hash { return e.lastHash }

// TimeMs is the leader timestamp of the last applied entry.
func (e *Engine) TimeMs() int64 { return e.timeMs }

// BodyVersion is the log's body version: entries below it are refused.
func (e *Engine) BodyVersion() uint32 { return e.bodyVersion }

// VersionSince is the index of the first entry of the log's body version
// (0 for version 1 from the start).
func (e *Engine) VersionSince() uint64 { return e.versionSince }

// Totals returns the account count, the sum of balances and what open
// holds reserve of it.
func (e *Engine) Totals() Totals {
	t := e.totals
	t.Held = e.holds.held
	return t
}

// Config returns the configuration the engine runs with.
func (e *Engine) Config() Config { return e.cfg }

// Get returns an account by number.
func (e *Engine) Get(number string) (Account, bool) {
	s, ok := e.accounts.get(number)
	if !ok {
		return Account{}, false
	}
	return s.account(), true
}

// List returns up to limit accounts whose numbers sort strictly after
// after, in byte order ("" starts at the beginning).
func (e *Engine) List(after string, limit int) []Account {
	if limit <= 0 {
		return nil
	}
	out := make([]Account, 0, min(limit, int(e.totals.Accounts)))
	e.accounts.ascend(after, func(s *slot) bool {
		if s.number() == after {
			return true
		}
		out = append(out, s.account())
		return len(out) < limit
	})
	return out
}

// Apply applies the next entry of the log and returns one Result per
// command, in order. It returns an error, and changes nothing, if the entry
// does not extend the log this engine has applied.
func (e *Engine) Apply(ent *Entry) ([]Result, error) {
	if err := e.checkNext(ent); err != nil {
		return nil, err
	}
	results := make([]Result, len(ent.Commands))
	e.spilled = nil                  // what an Apply spilled is the node's until the next (TakeSpilled)
	now := max(ent.TimeMs, e.timeMs) // a leader's clock may step back; the log's time never does
	if e.holds.open > 0 || e.approvals.open > 0 {
		e.expireHolds(ent.Index, now) // before the commands (docs/format.md, "Holds and their expiry")
		e.expireApprovals(ent.Index, now)
	}
	keyTime := int64(0) // a key's time is kept from version 5: older states have none to agree on
	if ent.BodyVersion >= BodyV5 {
		keyTime = now
	}
	for i := range ent.Commands {
		results[i] = e.applyCommand(ent.Index, now, keyTime, &ent.Commands[i])
	}
	e.index = ent.Index
	e.epoch = ent.Epoch
	e.lastHash = ent.Hash()
	e.timeMs = ent.TimeMs
	if ent.BodyVersion >= BodyV4 {
		e.timeMs = now // the effective time: it never goes back (docs/format.md, "Entry time")
	}
	if ent.BodyVersion > e.bodyVersion { // the switch: once, at this index
		e.bodyVersion, e.versionSince = ent.BodyVersion, ent.Index
	}
	if len(ent.Cert) > 0 { // a term entry (package seal verified it)
		e.signer = Signer{Epoch: ent.Epoch, Cert: ent.Cert}
	}
	e.keys.expire(ent.Index, e.cfg, e.spillFor(ent, now))
	return results, nil
}

// ApplyRaw decodes raw and applies it.
func (e *Engine) ApplyRaw(raw []byte) (*Entry, []Result, error) {
	ent, err := DecodeEntry(raw)
	if err != nil {
		return nil, nil, err
	}
	res, err := e.Apply(ent)
	return ent, res, err
}

func (e *Engine) checkNext(ent *Entry) error {
	if ent.Index != e.index+1 {
		return fmt.Errorf("%w: got index %d, want %d", ErrOutOfOrder, ent.Index, e.index+1)
	}
	if ent.PrevHash != e.lastHash {
		return fmt.Errorf("%w: entry %d has prev_hash %s, last applied is %s", ErrChainBroken, ent.Index, ent.PrevHash, e.lastHash)
	}
	if ent.Epoch < e.epoch {
		return fmt.Errorf("%w: entry %d has epoch %d, last applied %d", ErrEpochRegressed, ent.Index, ent.Epoch, e.epoch)
	}
	if ent.BodyVersion < e.bodyVersion {
		return fmt.Errorf("%w: entry %d has body version %d, the log is at %d since %d", ErrBodyRegressed, ent.Index, ent.BodyVersion, e.bodyVersion, e.versionSince)
	}
	return nil
}

// applyCommand runs one command through the idempotency window (its
// principal's part of it), then checks its principal, then runs it. A
// refusal is recorded under the key like any outcome.
func (e *Engine) applyCommand(index uint64, nowMs, keyTimeMs int64, c *Command) Result {
	if !ValidKey(c.Key) {
		return rejected(CodeInvalidKey)
	}
	e.keyBuf = e.keyBuf[:0]
	if c.Principal != "" {
		e.keyBuf = append(append(e.keyBuf, c.Principal...), keyScopeSep...)
	}
	e.keyBuf = append(e.keyBuf, c.Key...)
	fp := c.fingerprint()
	if rec, created, ok := e.recordOf(index, nowMs); ok {
		if rec.fingerprint != fp {
			return rejected(CodeIdempotencyKeyReused)
		}
		return rec.replay(e, c, created)
	}
	r := Result{Code: e.Authorize(c, nowMs)}
	switch {
	case r.Code != CodeOK:
	case e.needsApproval(c):
		r = e.requestApproval(index, nowMs, c)
	default:
		r = e.execute(index, nowMs, c)
	}
	rec, created := newKeyRecord(index, keyTimeMs, fp, c, &r)
	e.keys.remember(e.keyBuf, created, rec)
	return r
}
