// Package pebblelog is the logger the project's Pebble stores share: it
// drops Pebble's chatter, since every failure comes back as an error
// anyway, and panics on a broken Pebble invariant.
package pebblelog

import "fmt"

// Quiet discards Pebble's messages.
type Quiet struct{}

func (Quiet) Infof(string, ...any)  {}
func (Quiet) Errorf(string, ...any) {}

// Fatalf panics: Pebble's own invariant broke.
func (Quiet) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}
