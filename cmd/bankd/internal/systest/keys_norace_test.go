//go:build !race

package systest

// A million commands past a window of 10,000 keys, in entries of at most
// 1,000 (TestAKeyOutlivesAMillionCommands).
const laterCommands, windowKeys, entryCommands = 1_000_000, 10_000, 1_000
