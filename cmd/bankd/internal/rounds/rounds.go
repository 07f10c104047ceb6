// Package rounds shares one call among the callers that wait for it, the
// way a linearizable read shares a leader's confirmation: a caller joins
// the next round to start, never one already running, so whatever a round
// proves, it proves about a moment after each of its callers arrived.
package rounds

import (
	"context"
	"sync"
)

// Runner runs f in rounds, one at a time; the callers that arrive while a
// round runs share the next one.
type Runner[T any] struct {
	f       func() (T, error)
	mu      sync.Mutex
	next    *round[T] // the round that arriving callers join; nil if none waits
	running bool      // a goroutine is running rounds
}

type round[T any] struct {
	done chan struct{}
	v    T
	err  error
}

// New returns a Runner of f.
func New[T any](f func() (T, error)) *Runner[T] { return &Runner[T]{f: f} }

// Join waits for the next round of f to start and end, and returns what it
// returned. When ctx ends first it returns ctx's error; the round still runs
// for the others.
func (r *Runner[T]) Join(ctx context.Context) (T, error) {
	rd := r.join()
	select {
	case <-rd.done:
		return rd.v, rd.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

func (r *Runner[T]) join() *round[T] {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next == nil {
		r.next = &round[T]{done: make(chan struct{})}
	}
	if !r.running {
		r.running = true
		go r.run()
	}
	return r.next
}

// run runs rounds while callers wait for one.
func (r *Runner[T]) run() {
	for {
		r.mu.Lock()
		rd := r.next
		r.next = nil
		r.running = rd != nil
		r.mu.Unlock()
		if rd == nil {
			return
		}
		rd.v, rd.err = r.f()
		close(rd.done)
	}
}
