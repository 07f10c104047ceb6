package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Keys remembered by time (body version 6 and later). The in-memory
// window holds the recent keys (Config.KeyWindowEntries, KeyWindowMax);
// a record that leaves it while its key is still within
// Config.KeyRetainMs of the log's effective time is spilled: the node
// takes it (TakeSpilled) and keeps it on disk. Before the next entries
// the node looks up, on disk, the keys they carry that the window lacks
// (KeysToFetch) and hands what it found to ApplyWith. The engine takes a
// handed record only if an entry before this one first used the key and
// it is still within KeyRetainMs, so a node whose disk holds records of
// entries it has not applied yet (a restart from an older snapshot)
// answers as every other node. Which keys are remembered is thus a
// function of the log alone: a key first used at index i and time t is
// remembered at entry j, time now, while it is in the window or while
// now < t + KeyRetainMs.

// KeyRecord is an idempotency record as the node keeps it on disk.
type KeyRecord struct {
	Key         string // scoped: the principal, a zero byte, the client's key
	Number      string // the account its create made
	Index       uint64 // the entry that first used the key
	TimeMs      int64  // that entry's effective time
	Fingerprint uint64
	Code        Code
	Balances    [2]uint64
}

// ErrBadKeyRecord marks bytes that are not a key record.
var ErrBadKeyRecord = errors.New("engine: bad key record")

// MarshalValue encodes the record but its key (the store's key):
// uvarint index | varint time_ms | [8]byte fingerprint | byte code |
// uvarint balance_0 | uvarint balance_1 | the created number.
func (r *KeyRecord) MarshalValue() []byte {
	return r.AppendValue(make([]byte, 0, 40+len(r.Number)))
}

// AppendValue appends what MarshalValue returns to b.
func (r *KeyRecord) AppendValue(b []byte) []byte {
	b = binary.AppendUvarint(b, r.Index)
	b = binary.AppendVarint(b, r.TimeMs)
	b = binary.LittleEndian.AppendUint64(b, r.Fingerprint)
	b = append(b, byte(r.Code))
	b = binary.AppendUvarint(b, r.Balances[0])
	b = binary.AppendUvarint(b, r.Balances[1])
	return append(b, r.Number...)
}

// UnmarshalKeyRecord decodes what MarshalValue wrote for key, with the
// checks a state's records get; it never panics.
func UnmarshalKeyRecord(key string, v []byte) (KeyRecord, error) {
	r := KeyRecord{Key: key}
	var n int
	next := func(read func([]byte) int) bool {
		if n < 0 {
			return false
		}
		k := read(v[n:])
		if k <= 0 {
			n = -1
			return false
		}
		n += k
		return true
	}
	ok := next(func(b []byte) (k int) { r.Index, k = binary.Uvarint(b); return }) &&
		next(func(b []byte) (k int) { r.TimeMs, k = binary.Varint(b); return }) &&
		next(func(b []byte) int {
			if len(b) < 9 {
				return 0
			}
			r.Fingerprint, r.Code = binary.LittleEndian.Uint64(b), Code(b[8])
			return 9
		}) &&
		next(func(b []byte) (k int) { r.Balances[0], k = binary.Uvarint(b); return }) &&
		next(func(b []byte) (k int) { r.Balances[1], k = binary.Uvarint(b); return })
	if !ok {
		return r, fmt.Errorf("%w: %d bytes", ErrBadKeyRecord, len(v))
	}
	r.Number = string(v[n:])
	switch {
	case !validScopedKey(key):
		return r, fmt.Errorf("%w: key %q", ErrBadKeyRecord, key)
	case r.Index == 0 || !r.Code.Valid() || r.Balances[0] > MaxAmount || r.Balances[1] > MaxAmount:
		return r, fmt.Errorf("%w: key %q: index %d, code %d", ErrBadKeyRecord, key, r.Index, r.Code)
	case r.Number != "" && !ValidAccountNumber(r.Number):
		return r, fmt.Errorf("%w: key %q: account %q", ErrBadKeyRecord, key, r.Number)
	}
	return r, nil
}

func (r *KeyRecord) record() keyRecord {
	return keyRecord{index: r.Index, timeMs: r.TimeMs, fingerprint: r.Fingerprint, code: r.Code, balances: r.Balances}
}

// ScopedKey is the key c is remembered under: its principal's own.
func ScopedKey(c *Command) string {
	if c.Principal == "" {
		return c.Key
	}
	return c.Principal + keyScopeSep + c.Key
}

// KeysToFetch lists the scoped keys of ent's commands that the window
// does not hold: those the node looks up on disk before ApplyWith. None
// before body version 6, or with Config.KeyRetainMs 0.
func (e *Engine) KeysToFetch(ent *Entry) []string {
	if ent.BodyVersion < BodyV6 || e.cfg.KeyRetainMs == 0 {
		return nil
	}
	var out []string
	for i := range ent.Commands {
		k := ScopedKey(&ent.Commands[i])
		if _, ok := e.keys.find([]byte(k)); !ok && ValidKey(ent.Commands[i].Key) {
			out = append(out, k)
		}
	}
	return out
}

// ApplyWith is Apply with the records the node found on disk of the
// entry's keys (by scoped key; any subset of KeysToFetch, the ones it
// has). The engine takes a record only if an entry before this one made
// it and it is still within Config.KeyRetainMs.
func (e *Engine) ApplyWith(ent *Entry, older map[string]KeyRecord) ([]Result, error) {
	e.older = older
	defer func() { e.older = nil }()
	return e.Apply(ent)
}

// recordOf finds the record of the key in keyBuf: in the window, else
// among the records handed to ApplyWith.
func (e *Engine) recordOf(index uint64, nowMs int64) (keyRecord, string, bool) {
	if rec, created, ok := e.keys.lookup(e.keyBuf); ok {
		return *rec, created, true
	}
	if e.older == nil {
		return keyRecord{}, "", false
	}
	o, ok := e.older[string(e.keyBuf)]
	if !ok || o.Index >= index || nowMs >= o.TimeMs+e.cfg.KeyRetainMs {
		return keyRecord{}, "", false
	}
	return o.record(), o.Number, true
}

// spillFor is what expire tells of each record that leaves the window
// after ent: from body version 6, one still within Config.KeyRetainMs at
// its effective time nowMs is kept for TakeSpilled.
func (e *Engine) spillFor(ent *Entry, nowMs int64) func(r *keyRecord, key, number []byte) {
	if ent.BodyVersion < BodyV6 || e.cfg.KeyRetainMs == 0 {
		return nil
	}
	return func(r *keyRecord, key, number []byte) {
		if nowMs < r.timeMs+e.cfg.KeyRetainMs {
			e.spilled = append(e.spilled, KeyRecord{Key: string(key), Number: string(number), Index: r.index, TimeMs: r.timeMs,
				Fingerprint: r.fingerprint, Code: r.code, Balances: r.balances})
		}
	}
}

// TakeSpilled returns, and forgets, the records that left the window in
// the last Apply while their keys are still remembered by time: the node
// keeps them on disk, durably before it writes a snapshot of a later
// index, and hands them back to ApplyWith. The next Apply forgets what
// was not taken.
func (e *Engine) TakeSpilled() []KeyRecord {
	out := e.spilled
	e.spilled = nil
	return out
}

// KeySpan says which idempotency keys the engine remembers now: every key
// first used after OldestIndex (the window forgets oldest first, so none
// of those has gone), and some of OldestIndex's own; none held: 0. From
// body version 6 also every key first used at or after ByTimeFromMs
// (RetainMs before the log's effective time) that left the window after
// ByTimeSinceIndex, the log's switch to version 6: the node's key store
// holds those.
type KeySpan struct {
	OldestIndex  uint64
	OldestTimeMs int64 // its effective time (0 before body version 5)
	Held         int   // records in the window
	// The window's bounds (Config): keys older than either are forgotten
	// unless remembered by time.
	WindowEntries uint64
	WindowMax     int
	// Remembered by time (0 before body version 6, or with KeyRetainMs 0).
	RetainMs         int64
	ByTimeFromMs     int64
	ByTimeSinceIndex uint64
}

// Keys reports the span of the idempotency memory.
func (e *Engine) Keys() KeySpan {
	s := KeySpan{Held: e.keys.len(), WindowEntries: e.cfg.KeyWindowEntries, WindowMax: e.cfg.KeyWindowMax}
	if s.Held > 0 {
		oldest := e.keys.at(e.keys.head)
		s.OldestIndex, s.OldestTimeMs = oldest.index, oldest.timeMs
	}
	if e.bodyVersion >= BodyV6 && e.cfg.KeyRetainMs > 0 {
		s.RetainMs, s.ByTimeFromMs, s.ByTimeSinceIndex = e.cfg.KeyRetainMs, e.timeMs-e.cfg.KeyRetainMs, e.versionSince
	}
	return s
}
