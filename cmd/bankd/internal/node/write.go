package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zkbank/zkbank/engine"
)

// Why Write gave up when its context ended.
var (
	// ErrNoLeader: no leader was known, or none took the commands: they
	// were not applied.
	ErrNoLeader = errors.New("node: no leader reachable")
	// ErrOutcomeUnknown: the commands may have been applied. Retry with
	// the same idempotency keys to learn the outcome; it will not apply
	// twice.
	ErrOutcomeUnknown = errors.New("node: outcome unknown")
)

// Write runs cmds through the log from any node: on this one when it
// leads, else forwarded to the leader it knows, retrying (leader changes,
// unreachable peers) until ctx ends, and then failing with ErrNoLeader or
// ErrOutcomeUnknown. Every command carries an idempotency key, so a retry
// never applies twice.
func (n *Node) Write(ctx context.Context, cmds []engine.Command) (uint64, []Outcome, error) {
	type result struct {
		index uint64
		out   []Outcome
	}
	r, err := untilLeader(ctx, func(ctx context.Context) (result, error) {
		index, out, err := n.Submit(ctx, cmds)
		if errors.Is(err, ErrNotLeader) {
			leader, ok := n.Leader()
			if !ok || leader.ID == n.cfg.ID {
				return result{}, fmt.Errorf("%w: %w", ErrNotLeader, ErrNoLeader)
			}
			bv := n.forwardVersion(leader.ID)
			if err := fitsLog(bv, cmds); err != nil {
				return result{}, err
			}
			index, out, err = n.cfg.Transport.Forward(ctx, leader.Addr, bv, cmds)
		}
		return result{index, out}, err
	})
	return r.index, r.out, err
}

// ErrLogTooOld: a command's op needs a newer body version than the log
// is written in yet (a fresh cluster switches within a second; a rolling
// upgrade once every expected member reads the new one). Retry.
var ErrLogTooOld = errors.New("node: the log's body version does not carry this command yet")

// fitsLog refuses, before it is queued with others, a command the body
// version bv cannot carry.
func fitsLog(bv uint32, cmds []engine.Command) error {
	if _, err := engine.ForBody(bv, cmds); err != nil {
		return fmt.Errorf("%w (the log is at body version %d): %w", ErrLogTooOld, bv, err)
	}
	return nil
}

// LinearizableIndex is an index that covers every write acknowledged
// before the call, confirmed by the leader (this node when it leads):
// a reader that waits until it applied it reads linearizably. A
// follower's concurrent reads share each call to the leader, as the
// leader's share its confirmations: a call that starts after a read
// arrived answers for it.
func (n *Node) LinearizableIndex(ctx context.Context) (uint64, error) {
	index, err := untilLeader(ctx, func(ctx context.Context) (uint64, error) {
		index, err := n.ReadIndex(ctx)
		if !errors.Is(err, ErrNotLeader) {
			return index, err
		}
		return n.leaderReads.Join(ctx)
	})
	if errors.Is(err, ErrOutcomeUnknown) { // a read changes nothing: say why it failed
		err = fmt.Errorf("%w: %v", ErrNoLeader, err)
	}
	return index, err
}

// forwardVersion is the body version forwarded commands travel in: the
// newest both this node and the leader read (the registry says what the
// leader reads), or, when that is not known, the log's as applied here,
// which every expected member reads.
func (n *Node) forwardVersion(leader string) uint32 {
	if r := n.peers.reads(leader); r > 0 {
		return min(r, n.cfg.BodyVersionMax)
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.eng.BodyVersion()
}

// askLeader is one round of leaderReads: one read index from the leader.
func (n *Node) askLeader() (uint64, error) {
	leader, ok := n.Leader()
	if !ok || leader.ID == n.cfg.ID {
		return 0, fmt.Errorf("%w: %w", ErrNotLeader, ErrNoLeader)
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.PeerTimeout)
	defer cancel()
	return n.cfg.Transport.ReadIndex(ctx, leader.Addr)
}

// untilLeader runs attempt until it succeeds, fails for good, or ctx
// ends; it backs off between attempts so that an election has time to
// finish. When ctx ends, the error says which it was: ErrOutcomeUnknown
// if any attempt may have reached the log (a leader lost or a peer gone
// while it held the commands), else ErrNoLeader (none took them).
func untilLeader[T any](ctx context.Context, attempt func(context.Context) (T, error)) (T, error) {
	backoff := 10 * time.Millisecond
	mayHaveApplied := false
	for {
		v, err := attempt(ctx)
		if err == nil || !retryable(err) {
			return v, err
		}
		mayHaveApplied = mayHaveApplied || !(errors.Is(err, ErrNotLeader) || errors.Is(err, ErrOverloaded))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			if mayHaveApplied {
				return v, fmt.Errorf("%w: %w (last try: %v)", ErrOutcomeUnknown, ctx.Err(), err)
			}
			return v, fmt.Errorf("%w: %w (last try: %v)", ErrNoLeader, ctx.Err(), err)
		}
		backoff = min(2*backoff, 250*time.Millisecond)
	}
}
