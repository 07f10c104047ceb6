package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"pgregory.net/rapid"
)

func stateBytes(t tb, s interface{ WriteState(io.Writer) error }) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.WriteState(&buf); err != nil {
		t.Fatalf("write state: %v", err)
	}
	return buf.Bytes()
}

// nopLock stands in for the node's lock where one goroutine does all.
type nopLock struct{}

func (nopLock) Lock()   {}
func (nopLock) Unlock() {}

// TestPropertyCaptureIsFrozen captures midway through random entries
// (creates, deletes, renames, freezes, all the money commands), applies the rest,
// and requires the capture to write exactly the state at its index.
func TestPropertyCaptureIsFrozen(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		version := genVersion.Draw(t, "version")
		entries := rapid.SliceOfN(rapid.SliceOfN(genCommand(version), 1, 6), 2, 20).Draw(t, "entries")
		cut := rapid.IntRange(0, len(entries)-1).Draw(t, "cut")
		e := newTestEngine(t)
		var c *Capture
		var want []byte
		for i, cmds := range entries {
			if i == cut {
				want = stateBytes(t, e)
				var err error
				if c, err = e.Capture(nopLock{}); err != nil {
					t.Fatal(err)
				}
			}
			mustApply(t, e, nextEntryAt(t, e, version, 1_700_000_000_000, cmds...))
		}
		if got := stateBytes(t, c); !bytes.Equal(got, want) {
			t.Fatalf("capture at %d wrote %d bytes differing from the state then (%d bytes)", c.Index(), len(got), len(want))
		}
		c.Release()
		if len(entries) > cut+1 && bytes.Equal(stateBytes(t, e), want) && e.Index() == c.Index() {
			t.Fatal("engine did not move on")
		}
	})
}

// TestCaptureWhileApplying writes a capture on one goroutine while another
// applies entries under the write lock, the way a node takes snapshots: the
// race detector watches the sharing, and the bytes must be those of the
// state at the capture's index. The key window is small, so whole chunks
// of it are dropped while the capture still reads them.
func TestCaptureWhileApplying(t *testing.T) {
	e, err := New(Config{KeyWindowEntries: 1 << 20, KeyWindowMax: 5000, ClosedHoldsKept: 10})
	if err != nil {
		t.Fatal(err)
	}
	w := &busyWriter{rng: rand.New(rand.NewPCG(1, 2)), accounts: 3000}
	for range 100 {
		apply(t, e, w.commands(100)...)
	}
	var mu sync.RWMutex
	mu.Lock()
	want := stateBytes(t, e)
	c, err := e.Capture(mu.RLocker())
	if err == nil {
		_, err = e.Capture(mu.RLocker())
	}
	mu.Unlock()
	if !errors.Is(err, ErrCaptureOpen) {
		t.Fatalf("second capture: %v, want ErrCaptureOpen", err)
	}

	// The capture's first write (after 64 KiB, midway through the
	// accounts) waits until half the entries are applied.
	halfway := make(chan struct{})
	done := make(chan []byte)
	go func() {
		out := &gatedWriter{gate: halfway}
		if err := c.WriteState(out); err != nil {
			out.buf.Reset()
		}
		done <- out.buf.Bytes()
	}()
	for i := range 100 {
		if i == 50 {
			close(halfway)
		}
		ent := nextEntry(t, e, w.commands(100)...)
		mu.Lock()
		_, err := e.Apply(ent)
		mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := <-done; !bytes.Equal(got, want) {
		t.Fatalf("capture at %d wrote %d bytes differing from the state then (%d bytes)", c.Index(), len(got), len(want))
	}
	mu.Lock()
	c.Release()
	again, err := e.Capture(mu.RLocker())
	mu.Unlock()
	if err != nil || !bytes.Equal(stateBytes(t, again), stateBytes(t, e)) {
		t.Fatalf("capture after release: %v, or its state is not the engine's", err)
	}
}

type gatedWriter struct {
	gate <-chan struct{}
	buf  bytes.Buffer
}

func (g *gatedWriter) Write(b []byte) (int, error) {
	<-g.gate
	return g.buf.Write(b)
}

// busyWriter makes a deterministic mix of every command over a few
// thousand accounts, each with a fresh key.
type busyWriter struct {
	rng      *rand.Rand
	accounts int
	created  int
	keys     int
}

func (w *busyWriter) commands(n int) []Command {
	out := make([]Command, n)
	for i := range out {
		w.keys++
		out[i] = w.command()
		out[i].Key = fmt.Sprintf("busy-%d", w.keys)
	}
	return out
}

func (w *busyWriter) command() Command {
	if w.created < w.accounts {
		w.created++
		return create(fmt.Sprintf("N%05d", w.created), "Holder", uint64(w.created%3)*1000)
	}
	a := fmt.Sprintf("N%05d", 1+w.rng.IntN(w.accounts))
	switch w.rng.IntN(6) {
	case 0:
		return deposit(a, 1+w.rng.Uint64N(100))
	case 1:
		return withdraw(a, 1+w.rng.Uint64N(100))
	case 2:
		return rename(a, fmt.Sprintf("Holder %d", w.keys))
	case 3:
		return remove(a) // succeeds only for an empty account
	case 4:
		return create(a, "Again", 0) // recreates a deleted one
	}
	return transfer(a, fmt.Sprintf("N%05d", 1+w.rng.IntN(w.accounts)), 1+w.rng.Uint64N(500))
}
