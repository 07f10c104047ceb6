package node

import (
	"context"
	"errors"
	"io"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
)

// Transport is everything this node asks of the others. Package peer
// implements it over the network (with the wire format, coalescing and
// node identity); peer.Network is its in-memory twin for tests. addr is a
// node's advertised address, as in its member and leader records.
type Transport interface {
	// Forward submits cmds on the leader at addr (which never forwards
	// again) and returns what the log made of them. They travel as a body
	// of bodyVersion, which both ends read (the log's).
	Forward(ctx context.Context, addr string, bodyVersion uint32, cmds []engine.Command) (index uint64, out []Outcome, err error)
	// ReadIndex asks the leader at addr for a linearizable read index
	// (Node.ReadIndex on its side).
	ReadIndex(ctx context.Context, addr string) (uint64, error)
	// Entries follows the leader's stream of confirmed entries
	// (Node.Entries on its side), handing each to deliver, until the
	// stream or ctx ends.
	Entries(ctx context.Context, addr string, deliver func(*entry.Envelope)) error
	// Snapshot opens the newest snapshot of the node at addr, as a stream
	// in the snapshot format (Node.OpenSnapshot on its side).
	Snapshot(ctx context.Context, addr string) (io.ReadCloser, error)
	// Keys opens the key store of the node at addr (Node.ExportKeys on
	// its side), which a node that installed its snapshot imports.
	Keys(ctx context.Context, addr string) (io.ReadCloser, error)
}

// ErrUnreachable: a peer did not answer (refused, reset, timed out). The
// write it carried may or may not have been applied: retry with the same
// idempotency keys.
var ErrUnreachable = errors.New("node: peer unreachable")

// retryable reports errors that may pass: no leader yet, the leader
// changed, a peer busy or unreachable. Commands carry idempotency keys, so
// a retry never applies twice.
func retryable(err error) bool {
	return errors.Is(err, ErrNotLeader) || errors.Is(err, ErrLeadershipLost) ||
		errors.Is(err, ErrOverloaded) || errors.Is(err, ErrUnreachable)
}
