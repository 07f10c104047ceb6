package node

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/zkbank/zkbank/snapshot"
	"github.com/zkbank/zkbank/zkcoord"
)

// catchUp installs the newest snapshot a live peer has, when the log no
// longer holds the entries after this node's applied index.
func (n *Node) catchUp(ctx context.Context) error {
	need, err := n.log.TrimmedBelow()
	if err != nil {
		return err
	}
	members, err := n.sess.Members()
	if err != nil {
		return err
	}
	sort.Slice(members, func(i, j int) bool { return members[i].Snapshot > members[j].Snapshot })
	for _, m := range members {
		if m.ID == n.cfg.ID || m.Snapshot+1 < need || m.Snapshot <= n.Applied() {
			continue
		}
		started := time.Now()
		info, err := n.fetchSnapshot(ctx, m)
		if err != nil {
			n.cfg.Logger.Warn("snapshot download failed", "peer", m.ID, "err", err)
			continue
		}
		keys, err := n.fetchKeys(ctx, m, info.Index)
		if err != nil {
			n.cfg.Logger.Warn("key store download failed", "peer", m.ID, "err", err)
			continue
		}
		return n.install(info, m.ID, keys, started)
	}
	return fmt.Errorf("node: no live peer has a snapshot at or past %d", need-1)
}

// fetchSnapshot streams a peer's newest snapshot into the store, checked
// as it arrives (the state is never held in memory).
func (n *Node) fetchSnapshot(ctx context.Context, peer zkcoord.MemberRecord) (snapshot.Info, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.SnapshotTimeout)
	defer cancel()
	body, err := n.cfg.Transport.Snapshot(ctx, peer.Addr)
	if err != nil {
		return snapshot.Info{}, fmt.Errorf("node: snapshot from %s: %w", peer.ID, err)
	}
	defer body.Close()
	info, err := n.dir.Snapshots.Receive(body)
	if err != nil {
		return snapshot.Info{}, fmt.Errorf("node: snapshot from %s: %w", peer.ID, err)
	}
	return info, nil
}

// fetchKeys imports the peer's key store, taken after its snapshot at
// index: the records older than the window that the snapshot does not
// hold.
//
// A day of keys can be gigabytes: the download may take as long as it
// keeps moving, and fails after SnapshotTimeout without a byte.
func (n *Node) fetchKeys(ctx context.Context, peer zkcoord.MemberRecord, index uint64) (uint64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stalled := time.AfterFunc(n.cfg.SnapshotTimeout, cancel)
	defer stalled.Stop()
	body, err := n.cfg.Transport.Keys(ctx, peer.Addr)
	if err != nil {
		return 0, fmt.Errorf("node: key store from %s: %w", peer.ID, err)
	}
	defer body.Close()
	keys, err := n.dir.Keys.Import(&moving{r: body, stalled: stalled, idle: n.cfg.SnapshotTimeout}, index)
	if err != nil {
		return keys, fmt.Errorf("node: key store from %s: %w", peer.ID, err)
	}
	return keys, nil
}

// moving reads r, putting the stall timer off with every byte.
type moving struct {
	r       io.Reader
	stalled *time.Timer
	idle    time.Duration
}

func (m *moving) Read(p []byte) (int, error) {
	k, err := m.r.Read(p)
	if k > 0 {
		m.stalled.Reset(m.idle)
	}
	return k, err
}

func (n *Node) install(info snapshot.Info, from string, keys uint64, started time.Time) error {
	e, meta, err := n.dir.InstallSaved(info)
	if err != nil {
		return err
	}
	n.snapIndex.Store(meta.Index)
	n.snapTaken = meta.Index
	n.swapEngine(e)
	n.mem.Update(meta.Index, meta.Index)
	n.cfg.Logger.Info("installed a peer's snapshot", "peer", from, "index", meta.Index,
		"accounts", meta.Accounts, "keys", keys, "took", time.Since(started).Round(time.Millisecond))
	n.markReadyWhenCaughtUp() // the log may hold nothing after the snapshot
	return nil
}
