package node

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/zkbank/zkbank/snapshot"
	"github.com/zkbank/zkbank/zkcoord"
)

// maybeSnapshot takes a snapshot every SnapshotEveryEntries entries. The
// state is streamed into a temporary file here, on the replica loop (it
// must see one index; about 0.3 s per million accounts, and no copy of the
// state in memory); the checksum, fsync and rename run beside the loop,
// one snapshot at a time.
func (n *Node) maybeSnapshot(ctx context.Context, applied uint64) {
	if applied < n.snapTaken+n.cfg.SnapshotEveryEntries || n.snapBusy.Load() {
		return
	}
	started := time.Now()
	n.mu.RLock()
	p, err := n.dir.Snapshots.Begin(n.eng, started.UnixMilli())
	n.mu.RUnlock()
	n.cfg.Hooks.stage(StageSnapshotCapture, started)
	if err != nil {
		n.cfg.Logger.Warn("snapshot capture failed; the next one will try again", "index", applied, "err", err)
		return
	}
	n.snapTaken = applied
	n.snapBusy.Store(true)
	go func() {
		defer n.snapBusy.Store(false)
		if err := n.saveSnapshot(p, started); err != nil {
			n.cfg.Logger.Warn("snapshot not saved; the next one will try again", "index", p.Index(), "err", err)
		}
	}()
}

func (n *Node) saveSnapshot(p *snapshot.Pending, started time.Time) error {
	info, err := p.Commit()
	if err != nil {
		return err
	}
	n.snapIndex.Store(info.Index)
	n.mem.Update(n.Applied(), info.Index)
	n.cfg.Logger.Info("snapshot saved", "index", info.Index, "bytes", info.Size, "took", time.Since(started).Round(time.Millisecond))
	return nil
}

// OpenSnapshot opens this node's newest snapshot file for a peer to
// download, with its index and size. The file stays readable after a
// prune deletes it, until closed.
func (n *Node) OpenSnapshot() (io.ReadCloser, snapshot.Info, error) {
	list, err := n.dir.Snapshots.List()
	if err != nil {
		return nil, snapshot.Info{}, fmt.Errorf("node: list snapshots: %w", err)
	}
	for _, info := range list { // newest first
		f, err := os.Open(info.Path)
		if err == nil {
			return f, info, nil
		}
	}
	return nil, snapshot.Info{}, fmt.Errorf("node: no snapshot to send")
}

// trimWhileLeading deletes log entries that no live member still needs:
// below both this leader's newest snapshot and every live member's applied
// index, keeping LogRetainEntries more. A member that comes back later
// installs a snapshot instead.
func (n *Node) trimWhileLeading(term *zkcoord.Term) {
	tick := time.NewTicker(n.cfg.TrimInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if err := n.trimOnce(); err != nil {
				n.cfg.Logger.Warn("log trim failed; trying again later", "err", err)
			}
		case <-term.Done():
			return
		}
	}
}

func (n *Node) trimOnce() error {
	members, err := n.sess.Members()
	if err != nil {
		return err
	}
	point := n.snapIndex.Load()
	for _, m := range members {
		point = min(point, m.Applied)
	}
	if point <= n.cfg.LogRetainEntries {
		return nil
	}
	below, err := n.log.TrimBelow(point - n.cfg.LogRetainEntries)
	if err != nil {
		return err
	}
	n.cfg.Logger.Debug("log trimmed", "below", below)
	return nil
}
