// Package enginetest generates realistic, hash-chained log entries for the
// tests and benchmarks of the packages above the engine. It is ordinary
// code (not a mock): entries it makes are valid input for any node.
package enginetest

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
)

// Log builds a chain of entries, each continuing the one before. The
// commands are a deterministic function of the seed: creates first, then a
// mix of transfers, deposits and withdrawals among Accounts accounts, with
// some rejections along the way.
type Log struct {
	Accounts int // accounts the commands touch (default 100)
	Epoch    uint64

	seed     uint64
	rng      *rand.Rand
	index    uint64
	prevHash engine.Hash
	created  int
	keys     int
}

// NewLog starts a log at index 1.
func NewLog(seed uint64) *Log {
	return &Log{Accounts: 100, Epoch: 1, seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Continue makes the log continue after (index, hash), e.g. a snapshot.
func (l *Log) Continue(index uint64, hash engine.Hash) {
	l.index, l.prevHash = index, hash
}

// Next returns the next entry with n commands, encoded.
func (l *Log) Next(n int) *engine.Entry {
	cmds := make([]engine.Command, n)
	for i := range cmds {
		cmds[i] = l.command()
	}
	e := &engine.Entry{Envelope: entry.Envelope{Index: l.index + 1, Epoch: l.Epoch, PrevHash: l.prevHash, TimeMs: int64(l.index) * 10}, Commands: cmds}
	if _, err := engine.EncodeEntry(e); err != nil {
		panic(fmt.Sprintf("enginetest: encode: %v", err)) // a generator bug
	}
	l.index, l.prevHash = e.Index, e.Hash()
	return e
}

// Entries returns count entries of n commands each.
func (l *Log) Entries(count, n int) []*engine.Entry {
	out := make([]*engine.Entry, count)
	for i := range out {
		out[i] = l.Next(n)
	}
	return out
}

// Number is the account number of the i-th generated account.
func Number(i int) string { return fmt.Sprintf("%010d", i+1) }

func (l *Log) command() engine.Command {
	l.keys++
	key := fmt.Sprintf("gen-%d-%d", l.seed, l.keys)
	if l.created < l.Accounts {
		l.created++
		return engine.Command{Op: engine.OpCreateAccount, Key: key, Account: Number(l.created - 1), Name: "Test", Amount: 10_000}
	}
	a, b := l.rng.IntN(l.Accounts), l.rng.IntN(l.Accounts)
	amount := uint64(l.rng.IntN(2_000) + 1)
	switch l.rng.IntN(10) {
	case 0:
		return engine.Command{Op: engine.OpDeposit, Key: key, Account: Number(a), Amount: amount}
	case 1:
		return engine.Command{Op: engine.OpWithdraw, Key: key, Account: Number(a), Amount: amount}
	default:
		return engine.Command{Op: engine.OpTransfer, Key: key, Account: Number(a), To: Number(b), Amount: amount}
	}
}

// Sized is an encoded entry at index (epoch 1, no predecessor) of one
// create whose name is nameBytes long: a payload of a chosen size.
func Sized(index uint64, nameBytes int) *engine.Entry {
	e := &engine.Entry{Envelope: entry.Envelope{Index: index, Epoch: 1}, Commands: []engine.Command{
		{Op: engine.OpCreateAccount, Key: "k", Account: "A-1", Name: strings.Repeat("n", nameBytes)}}}
	if _, err := engine.EncodeEntry(e); err != nil {
		panic(fmt.Sprintf("enginetest: encode: %v", err)) // a generator bug
	}
	return e
}

// After is e's next entry, at timeMs and body version, as a log would
// carry it: encoded and decoded again (a sealed layout's stand-in key id
// and signature from version 3).
func After(e *engine.Engine, timeMs int64, version uint32, cmds ...engine.Command) (*engine.Entry, error) {
	ent := &engine.Entry{Envelope: entry.Envelope{Index: e.Index() + 1, Epoch: 1, PrevHash: e.LastHash(), TimeMs: timeMs,
		BodyVersion: version}, Commands: cmds}
	if version >= engine.BodyV3 {
		ent.KeyID, ent.Sig = 1, []byte{1}
	}
	raw, err := engine.EncodeEntry(ent)
	if err != nil {
		return nil, err
	}
	return engine.DecodeEntry(raw)
}

// Memory is the reference for a node's key store: every record the
// engine spilled, the newest per key, handed back to the engine as a node
// that never restarts and never forgets would. Tests of the real store
// compare against it; the engine's property test checks the engine with
// such a memory against a model that remembers keys by time.
type Memory map[string]engine.KeyRecord

// Apply applies ent to e with the records m holds of its keys, and keeps
// what e spilled.
func (m Memory) Apply(e *engine.Engine, ent *engine.Entry) ([]engine.Result, error) {
	older := map[string]engine.KeyRecord{}
	for _, k := range e.KeysToFetch(ent) {
		if r, ok := m[k]; ok {
			older[k] = r
		}
	}
	res, err := e.ApplyWith(ent, older)
	if err != nil {
		return nil, err
	}
	for _, r := range e.TakeSpilled() {
		m[r.Key] = r
	}
	return res, nil
}
