package node

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/zkbank/zkbank/zkcoord"
)

// peerWatch keeps the latest list of live members, and of expected ones
// (the registry, read again whenever a member joins or leaves: a node
// registers as it starts).
type peerWatch struct {
	list     atomic.Pointer[[]zkcoord.MemberRecord]
	registry atomic.Pointer[[]zkcoord.RegistryRecord]
}

func watchPeers(ctx context.Context, s *zkcoord.Session) *peerWatch {
	pw := &peerWatch{}
	pw.list.Store(&[]zkcoord.MemberRecord{})
	pw.registry.Store(&[]zkcoord.RegistryRecord{})
	go func() {
		for l := range s.WatchMembers(ctx) {
			pw.list.Store(&l)
			if r, err := s.Registry(); err == nil {
				pw.registry.Store(&r)
			}
		}
	}()
	return pw
}

// reads is the newest body version the expected member id reads (0 when
// not known).
func (pw *peerWatch) reads(id string) uint32 {
	for _, r := range *pw.registry.Load() {
		if r.ID == id {
			return r.Reads
		}
	}
	return 0
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

// ZooKeeper is this node's view of the ensemble: its session, the server
// it talks to, and what each configured server says of itself.
func (n *Node) ZooKeeper() (session, connected string, servers []zkcoord.ServerState) {
	return n.sess.State().String(), n.sess.ConnectedServer(), n.sess.Servers()
}

// View is this node's view of the cluster.
type View struct {
	Live         []zkcoord.MemberRecord
	Expected     []zkcoord.RegistryRecord
	TrimmedBelow uint64
	Head         uint64
	// Stale: ZooKeeper could not be read, and the lists are this node's
	// last view of them (the head is what it applied).
	Stale bool
}

// View reads the members, live and expected, and the log's bounds from
// ZooKeeper; while its session is down, it answers at once from what it
// saw last, marked Stale, rather than wait for ZooKeeper.
func (n *Node) View() View {
	if v, err := n.readView(); err == nil {
		n.peers.registry.Store(&v.Expected)
		return v
	}
	return View{Live: *n.peers.list.Load(), Expected: *n.peers.registry.Load(), Head: n.Applied(), Stale: true}
}

func (n *Node) readView() (View, error) {
	if !n.sess.Connected() {
		return View{}, fmt.Errorf("node: ZooKeeper session %v", n.sess.State())
	}
	var v View
	var err error
	if v.Live, err = n.sess.Members(); err != nil {
		return v, err
	}
	if v.Expected, err = n.sess.Registry(); err != nil {
		return v, err
	}
	if v.TrimmedBelow, err = n.log.TrimmedBelow(); err != nil {
		return v, err
	}
	v.Head, err = n.log.LastIndex()
	return v, err
}
