package node

import (
	"context"
	"fmt"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/history"
)

// Applied is the index of the last entry applied to the engine.
func (n *Node) Applied() uint64 {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.eng.Index()
}

// WaitApplied returns once the node applied index, or with ctx's error.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	for {
		n.mu.RLock()
		at, ch := n.eng.Index(), n.applied
		n.mu.RUnlock()
		if at >= index {
			return nil
		}
		select {
		case <-ch:
		case <-n.done:
			return ErrStopped
		case <-ctx.Done():
			return fmt.Errorf("node: waiting for index %d (applied %d): %w", index, at, ctx.Err())
		}
	}
}

// Get reads one account and the index the read reflects.
func (n *Node) Get(number string) (engine.Account, bool, uint64) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	a, ok := n.eng.Get(number)
	return a, ok, n.eng.Index()
}

// List reads up to limit accounts after the given number, in byte order.
func (n *Node) List(after string, limit int) ([]engine.Account, uint64) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.eng.List(after, limit), n.eng.Index()
}

// Hold reads one hold the state remembers and the index the read reflects.
func (n *Node) Hold(id uint64) (engine.Hold, bool, uint64) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	h, ok := n.eng.Hold(id)
	return h, ok, n.eng.Index()
}

// HoldsOf reads up to limit holds from or to an account, after the id
// after, in id order.
func (n *Node) HoldsOf(number string, after uint64, limit int) ([]engine.Hold, uint64) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.eng.HoldsOf(number, after, limit), n.eng.Index()
}

// Approval reads one approval the state remembers.
func (n *Node) Approval(id uint64) (engine.Approval, bool, uint64) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	a, ok := n.eng.Approval(id)
	return a, ok, n.eng.Index()
}

// Approvals reads up to limit approvals after the id after, in id order;
// pendingOnly leaves out the closed ones.
func (n *Node) Approvals(after uint64, limit int, pendingOnly bool) ([]engine.Approval, uint64) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.eng.Approvals(after, limit, pendingOnly), n.eng.Index()
}

// ApprovalLimit reads a role's approval limit (0: none).
func (n *Node) ApprovalLimit(r engine.Role) uint64 {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.eng.ApprovalLimit(r)
}

// PrincipalName says who a command's principal is, for people.
func (n *Node) PrincipalName(by string) string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.eng.PrincipalName(by)
}

// Digest summarises the state for comparison across nodes.
type Digest struct {
	Index     uint64
	StateHash engine.Hash
	Totals    engine.Totals
}

// Digest computes the state hash at the applied index. It reads the whole
// state, so it is for audits and tests, not for every request.
func (n *Node) Digest() Digest {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return Digest{Index: n.eng.Index(), StateHash: n.eng.StateHash(), Totals: n.eng.Totals()}
}

// Status is this node's view of itself.
type Status struct {
	ID            string
	Leader        bool
	Epoch         uint64 // of the term held, when leading
	Applied       uint64
	AppendHead    uint64 // last index appended while leading
	SnapshotIndex uint64
	Ready         bool
	Session       string
	Pushed        uint64 // entries taken from the leader's pushes instead of ZooKeeper
	BodyVersion   uint32 // the log's, as applied here
	VersionSince  uint64 // index of its first entry
	ReadsVersion  uint32 // the newest this binary reads
	Stalled       *Stall // the entry the replica waits on, nil when none
	Keys          engine.KeySpan
	KeyDiskBytes  uint64 // the key store's size on disk
	// HistoryFrom and HistoryDiskBytes: the first index the history
	// holds (docs/api.md, "Statements and the change feed"), its size.
	HistoryFrom      uint64
	HistoryDiskBytes uint64
}

// Status reports this node's state.
func (n *Node) Status() Status {
	n.mu.RLock()
	applied, bv, since, keys := n.eng.Index(), n.eng.BodyVersion(), n.eng.VersionSince(), n.eng.Keys()
	n.mu.RUnlock()
	st := Status{ID: n.cfg.ID, Applied: applied, SnapshotIndex: n.snapIndex.Load(),
		Ready: n.Ready(), Session: n.sess.State().String(), AppendHead: n.appendHead.Load(),
		Pushed: n.hinted.Load(), BodyVersion: bv, VersionSince: since, ReadsVersion: n.cfg.BodyVersionMax,
		Stalled: n.Stalled(), Keys: keys, KeyDiskBytes: n.dir.Keys.DiskBytes(),
		HistoryFrom: n.dir.History.From(), HistoryDiskBytes: n.dir.History.DiskBytes()}
	if l := n.leading.Load(); l != nil && l.term.Err() == nil {
		st.Leader, st.Epoch = true, l.term.Epoch
	}
	return st
}

// Revoked reports whether the certificate with serial is revoked in the
// state this node applied.
func (n *Node) Revoked(serial string) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	_, ok := n.eng.Revoked(serial)
	return ok
}

// Revocations lists the revoked certificates, in serial order.
func (n *Node) Revocations() []engine.Revocation {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.eng.Revocations()
}

// Authorize checks c's principal against the state this node applied, at
// the time of its last entry: the check before the log. The engine makes
// it again at apply, which decides.
func (n *Node) Authorize(c *engine.Command) engine.Code {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.eng.Authorize(c, n.eng.TimeMs())
}

// TokenByHash finds the token whose secret hashes to h, with the time of
// the last entry this node applied (by which expiry is judged).
func (n *Node) TokenByHash(h [engine.TokenHashLen]byte) (engine.Token, int64, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	t, ok := n.eng.TokenByHash(h)
	return t, n.eng.TimeMs(), ok
}

// TokenByID finds a token by its id.
func (n *Node) TokenByID(id uint64) (engine.Token, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.eng.TokenByID(id)
}

// Tokens lists every token, revoked ones included, in id order.
func (n *Node) Tokens() []engine.Token {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.eng.Tokens()
}

// History is this node's record of what it applied, for statements and
// the change feed. It holds every entry the engine applied (an entry is
// in it before the engine's index says so to any reader).
func (n *Node) History() *history.Store { return n.dir.History }
