package node

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
	"github.com/zkbank/zkbank/seal"
	"github.com/zkbank/zkbank/zkcoord"
)

// errRetail: an entry revoked a certificate, so the entries after it are
// verified against the state after it: tail again from there once it is
// applied (revocations are rare; the batch is cut only then).
var errRetail = errors.New("node: tail again after a revocation")

// Stall is an entry at the head of the log that this node cannot verify
// (or decode), and waits on: it never journals or applies one. The next
// leader deletes it if nobody applied it.
type Stall struct {
	Index  uint64
	Reason string
	Since  time.Time
}

// stallRecheck is how often a stalled replica reads the entry again.
const stallRecheck = 250 * time.Millisecond

// cursor verifies entries after what this node applied (nil for an
// unsealed node, whose entries are only decoded).
func (n *Node) cursor() (*seal.Cursor, error) {
	if n.cfg.Seal == nil {
		return nil, nil
	}
	n.mu.RLock()
	signer := n.eng.Signer()
	n.mu.RUnlock()
	return n.cfg.Seal.Trust.NewCursor(signer, n.Revoked)
}

// open verifies (in a sealed log) and decodes tailed entries, in order,
// and returns those that pass. err says why it stopped early: an entry
// that does not verify (seal.ErrUnverified: wait), a revocation
// (errRetail), a body this binary cannot read (ErrBinaryTooOld: stop).
func (n *Node) open(envs []*entry.Envelope) ([]*engine.Entry, error) {
	cur, err := n.cursor()
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	out := make([]*engine.Entry, 0, len(envs))
	for i, env := range envs {
		if err := n.checkBody(env.BodyVersion, env.Index); err != nil {
			return out, err
		}
		e, err := openWith(cur, env)
		if err != nil {
			return out, err
		}
		out = append(out, e)
		if cur != nil && seal.Revokes(e) && i < len(envs)-1 {
			return out, errRetail
		}
	}
	return out, nil
}

// openWith verifies and decodes env with cur, or only decodes it.
func openWith(cur *seal.Cursor, env *entry.Envelope) (*engine.Entry, error) {
	if cur == nil {
		e, err := engine.Open(env)
		if err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		return e, nil
	}
	return cur.Open(env)
}

// judgeDiverged tells, when the tailer found the next entry unreadable or
// off the local chain, junk (which waits, as an unverifiable entry does)
// from a fork: an entry that verifies and contradicts what this node
// applied, where the replica must stop.
func (n *Node) judgeDiverged(diverged error) error {
	n.mu.RLock()
	next, last := n.eng.Index()+1, n.eng.LastHash()
	n.mu.RUnlock()
	env, err := n.log.Read(next)
	switch {
	case errors.Is(err, zkcoord.ErrDiverged):
		return fmt.Errorf("%w: %w", seal.ErrUnverified, err)
	case err != nil:
		return nil // gone or unreachable: tail again
	}
	cur, err := n.cursor()
	if err != nil {
		return err
	}
	if _, err := openWith(cur, env); err != nil && (cur != nil || errors.Is(err, engine.ErrMalformedEntry)) {
		return err
	}
	if env.PrevHash != last {
		return diverged
	}
	return nil
}

// stall records that the replica waits on an entry and, once per entry,
// says so; the wait ends when an entry applies (unstall).
func (n *Node) stall(ctx context.Context, err error) {
	index := n.Applied() + 1
	if s := n.stalled.Load(); s == nil || s.Index != index {
		n.stalled.Store(&Stall{Index: index, Reason: err.Error(), Since: time.Now()})
		n.cfg.Logger.Error("the next log entry does not verify: not applying it, waiting for the next leader to clear it",
			"index", index, "err", err)
	}
	sleep(ctx, stallRecheck)
}

// unstall ends a stall once an entry applied.
func (n *Node) unstall() {
	if s := n.stalled.Swap(nil); s != nil {
		n.cfg.Logger.Info("the log moved past the entry that did not verify", "index", s.Index, "waited", time.Since(s.Since).Round(time.Millisecond))
	}
}

// Stalled is the entry this node waits on, nil when none.
func (n *Node) Stalled() *Stall { return n.stalled.Load() }

// stallState is Node's record of a stall.
type stallState = atomic.Pointer[Stall]
