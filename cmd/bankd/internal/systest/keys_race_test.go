//go:build race

package systest

// Under the race detector: 20,000 commands past a window of 1,000 keys,
// in entries of at most 100, so that there are still far more entries
// than a stalled node buffers (TestAKeyOutlivesAMillionCommands).
const laterCommands, windowKeys, entryCommands = 20_000, 1_000, 100
