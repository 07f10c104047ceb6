package node

import (
	"context"
	"fmt"
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
		n.lastExpected.Store(&v.Expected)
		return v
	}
	v := View{Live: *n.peers.list.Load(), Head: n.Applied(), Stale: true}
	if e := n.lastExpected.Load(); e != nil {
		v.Expected = *e
	}
	return v
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
