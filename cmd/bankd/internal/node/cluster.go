package node

import (
	"context"
	"sync/atomic"

	"github.com/zkbank/zkbank/zkcoord"
)

// peerWatch keeps the latest list of live members.
type peerWatch struct {
	list atomic.Pointer[[]zkcoord.MemberRecord]
}

func watchPeers(ctx context.Context, s *zkcoord.Session) *peerWatch {
	pw := &peerWatch{}
	pw.list.Store(&[]zkcoord.MemberRecord{})
	go func() {
		for l := range s.WatchMembers(ctx) {
			pw.list.Store(&l)
		}
	}()
	return pw
}

func (pw *peerWatch) live(id string) bool {
	for _, m := range *pw.list.Load() {
		if m.ID == id {
			return true
		}
	}
	return false
}

// Leader is the current leader's id and API address, when a leader is
// known and alive (its member znode exists).
func (n *Node) Leader() (zkcoord.LeaderRecord, bool) {
	rec, ok := n.el.Leader()
	if !ok || rec.ID == "" || !n.peers.live(rec.ID) {
		return rec, false
	}
	return rec, true
}

// Registry reads the expected members from ZooKeeper.
func (n *Node) Registry() ([]zkcoord.RegistryRecord, error) { return n.sess.Registry() }

// Members reads every live member's record from ZooKeeper.
func (n *Node) Members() ([]zkcoord.MemberRecord, error) { return n.sess.Members() }

// LogBounds reads the log's trim point and head from ZooKeeper.
func (n *Node) LogBounds() (trimmedBelow, head uint64, err error) {
	if trimmedBelow, err = n.log.TrimmedBelow(); err != nil {
		return 0, 0, err
	}
	head, err = n.log.LastIndex()
	return trimmedBelow, head, err
}
