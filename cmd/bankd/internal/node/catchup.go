package node

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/zkbank/zkbank/snapshot"
	"github.com/zkbank/zkbank/zkcoord"
)

// SnapshotPath is where every node serves its newest snapshot to peers.
const SnapshotPath = "/internal/v1/snapshot"

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
		img, err := n.fetchSnapshot(ctx, m)
		if err != nil {
			n.cfg.Logger.Warn("snapshot download failed", "peer", m.ID, "err", err)
			continue
		}
		return n.install(img, m.ID)
	}
	return fmt.Errorf("node: no live peer has a snapshot at or past %d", need-1)
}

func (n *Node) fetchSnapshot(ctx context.Context, peer zkcoord.MemberRecord) (*snapshot.Image, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(peer.Addr, "/")+SnapshotPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := n.cfg.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("node: snapshot from %s: HTTP %s", peer.ID, resp.Status)
	}
	img, err := snapshot.Read(resp.Body) // verifies the trailer before anything uses it
	if err != nil {
		return nil, fmt.Errorf("node: snapshot from %s: %w", peer.ID, err)
	}
	return img, nil
}

func (n *Node) install(img *snapshot.Image, from string) error {
	started := time.Now()
	e, err := n.dir.Install(img)
	if err != nil {
		return err
	}
	n.snapIndex.Store(img.Meta.Index)
	n.snapTaken = img.Meta.Index
	n.swapEngine(e)
	n.cfg.Logger.Info("installed a peer's snapshot", "peer", from, "index", img.Meta.Index,
		"accounts", img.Meta.Accounts, "took", time.Since(started).Round(time.Millisecond))
	return nil
}
