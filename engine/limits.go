package engine

import (
	"fmt"

	"github.com/zkbank/zkbank/engine/entry"
)

// Money and size limits. They are part of the replicated protocol: every
// node must run with the same values.
const (
	// MaxAmount is the largest amount and the largest balance, 2^53-1, so
	// that every value is exact in any JSON parser.
	MaxAmount uint64 = 1<<53 - 1
	// MaxTotalBalance bounds the sum of all balances so totals never wrap.
	MaxTotalBalance uint64 = 1<<63 - 1

	// AccountNumberLenMax is the longest account number (room for an IBAN).
	AccountNumberLenMax = 34
	// AssignedNumberWidth is the width of the decimal account numbers the
	// engine assigns, so that they list in creation order.
	AssignedNumberWidth = 10
	// NameRunesMax is the longest account name, in characters.
	NameRunesMax = 200
	// KeyLenMax is the longest idempotency key, in bytes.
	KeyLenMax = 64
	// PrincipalLenMax is the longest principal a command carries, in bytes.
	PrincipalLenMax = 64

	// EntryBytesMax is the hard cap on one encoded log entry; ZooKeeper
	// refuses requests near 1 MB (jute.maxbuffer).
	EntryBytesMax = entry.BytesMax
	// EntryCommandsMax caps the commands one entry may carry.
	EntryCommandsMax = 50_000
	// fieldBytesMax caps any string field at decode time. Tighter semantic
	// limits (names, numbers, keys) are rejections at apply time.
	fieldBytesMax = 1024
	// closedHoldsLimit bounds Config.ClosedHoldsKept.
	closedHoldsLimit = 10_000_000
)

// Config holds the engine settings that shape replicated state. All nodes of
// a cluster must use the same Config.
type Config struct {
	// KeyWindowEntries is how many log entries an idempotency key is
	// remembered for after the entry that first used it.
	KeyWindowEntries uint64
	// KeyWindowMax caps how many keys are remembered at once; the oldest
	// are forgotten first.
	KeyWindowMax int
	// KeyRetainMs is how long, from body version 6, a key is remembered
	// after the entry that first used it, in the log's effective time,
	// once it has left the in-memory window: the node keeps such records
	// on disk (package keystore) and hands them back (ApplyWith). 0: only
	// the window (tests of the window alone).
	KeyRetainMs int64
	// ClosedHoldsKept is how many closed holds the state remembers, the
	// most recently closed; an older one answers hold_closed without
	// saying how it closed.
	ClosedHoldsKept int
}

// KeyRetainDefaultMs is how long bankd remembers a key: 24 hours of the
// log's time, as Stripe does.
const KeyRetainDefaultMs = 24 * 3600 * 1000

// DefaultConfig is the configuration bankd uses unless told otherwise.
func DefaultConfig() Config {
	return Config{KeyWindowEntries: 100_000, KeyWindowMax: 500_000, KeyRetainMs: KeyRetainDefaultMs, ClosedHoldsKept: 100_000}
}

// Validate reports a Config that cannot work.
func (c Config) Validate() error {
	if c.KeyWindowEntries == 0 {
		return fmt.Errorf("engine: KeyWindowEntries must be at least 1")
	}
	if c.KeyWindowMax < 1 || c.KeyWindowMax > keyWindowLimit {
		return fmt.Errorf("engine: KeyWindowMax must be 1..%d, got %d", keyWindowLimit, c.KeyWindowMax)
	}
	if c.KeyRetainMs < 0 {
		return fmt.Errorf("engine: KeyRetainMs must be 0 or more, got %d", c.KeyRetainMs)
	}
	if c.ClosedHoldsKept < 1 || c.ClosedHoldsKept > closedHoldsLimit {
		return fmt.Errorf("engine: ClosedHoldsKept must be 1..%d, got %d", closedHoldsLimit, c.ClosedHoldsKept)
	}
	return nil
}
