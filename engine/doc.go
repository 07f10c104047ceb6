// Package engine is zkbank's deterministic state machine: the accounts, the
// commands that change them, the outcomes of those commands, and the format
// of the log entries that carry commands between servers.
//
// Every bankd applies the same log entries in the same order to an Engine and
// so reaches the same state, byte for byte. To make that true the package
// never reads the clock, never lets randomness reach its results (the seed
// of its in-memory hash indexes decides only where entries sit), never
// logs, never does I/O beyond the io.Reader and io.Writer it is handed, and
// never lets map iteration order reach its output (a lint test enforces the
// imports).
//
// Business outcomes (insufficient funds, unknown account, ...) are Results
// with a stable Code; they are deterministic and recorded like any other
// command. Errors are reserved for replication faults: an entry out of order,
// a broken hash chain, an undecodable entry. A replica that sees one of
// those must stop, not guess.
//
// An Engine is not safe for concurrent use: one goroutine owns it. The
// one exception is a Capture, whose state is written on another goroutine
// while Apply goes on, under a read/write lock the caller shares with it.
package engine
