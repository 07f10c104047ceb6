package node

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/snapshot"
	"github.com/zkbank/zkbank/zkcoord"
)

// maybeSnapshot takes a snapshot every SnapshotEveryEntries entries or
// SnapshotEveryBytes of log, whichever comes first. The replica loop only
// freezes the state (an engine.Capture: microseconds, under the write
// lock); encoding it into a file, the checksum, fsync and rename run
// beside the loop, one snapshot at a time, while entries go on being
// applied.
func (n *Node) maybeSnapshot(applied uint64) {
	if !n.snapshotDue(applied) || n.snapBusy.Load() {
		return
	}
	started := time.Now()
	n.mu.Lock()
	c, err := n.eng.Capture(n.mu.RLocker())
	n.mu.Unlock()
	n.cfg.Hooks.stage(StageSnapshotCapture, started)
	if err != nil {
		return // only while the last one is open, which snapBusy rules out
	}
	n.snapTaken = applied
	n.snapBusy.Store(true)
	n.snapWriter.Go(func() {
		defer n.snapBusy.Store(false)
		if _, err := n.saveSnapshot(c, started); err != nil {
			n.cfg.Logger.Warn("snapshot not saved; the next one will try again", "index", c.Index(), "err", err)
		}
	})
}

// snapshotDue: enough entries, or enough bytes of them, since the last
// capture.
func (n *Node) snapshotDue(applied uint64) bool {
	if applied >= n.snapTaken+n.cfg.SnapshotEveryEntries {
		return true
	}
	bytes, ok := n.logBytes.between(n.snapTaken, applied)
	return ok && bytes >= n.cfg.SnapshotEveryBytes
}

func (n *Node) saveSnapshot(c *engine.Capture, started time.Time) (snapshot.Info, error) {
	p, err := n.dir.Snapshots.Begin(c, started.UnixMilli())
	n.mu.Lock()
	c.Release()
	n.mu.Unlock()
	if err != nil {
		return snapshot.Info{}, err
	}
	// Every entry up to the capture's index went through the key store
	// and the history before the capture: make them durable before the
	// snapshot that needs them exists.
	if err := n.dir.SyncStores(c.Index()); err != nil {
		p.Abort()
		return snapshot.Info{}, err
	}
	info, err := p.Commit()
	if err != nil {
		return snapshot.Info{}, err
	}
	n.collectKeys()
	n.snapIndex.Store(info.Index)
	n.mem.Update(n.Applied(), info.Index)
	n.cfg.Logger.Info("snapshot saved", "index", info.Index, "bytes", info.Size, "took", time.Since(started).Round(time.Millisecond))
	return info, nil
}

// collectKeys lets the key store forget what no replay from the oldest
// snapshot kept can need, and the journal the entries below it (when
// JournalRetainEntries bounds it: trimJournal, in the replica loop).
func (n *Node) collectKeys() {
	list, err := n.dir.Snapshots.List()
	if err != nil || len(list) == 0 {
		return // the next snapshot tries again
	}
	oldest := list[len(list)-1].Index
	n.dir.Keys.CollectBelow(oldest)
	n.oldestSnap.Store(oldest)
}

// trimJournal deletes the journal's entries below the oldest snapshot
// kept, and below what JournalRetainEntries and JournalRetainBytes keep.
// It runs in the replica loop, the journal's one writer.
func (n *Node) trimJournal(applied uint64) error {
	entries, bytes, oldest := n.cfg.JournalRetainEntries, n.cfg.JournalRetainBytes, n.oldestSnap.Load()
	if entries == 0 && bytes == 0 || oldest == 0 || oldest+1 <= n.dir.Journal.First() {
		return nil
	}
	keep := uint64(1) // the lowest index the retention keeps
	if entries > 0 && applied > entries {
		keep = applied + 1 - entries
	}
	if bytes > 0 {
		from, err := n.journalKeepingBytes(applied, bytes)
		if err != nil {
			return err
		}
		keep = max(keep, from)
	}
	below := min(oldest+1, keep)
	if below <= n.dir.Journal.First() {
		return nil
	}
	if err := n.dir.Journal.TrimBelow(below); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	return nil
}

// trimHistory forgets the history's events below both the oldest
// snapshot kept (a restart from it continues the history) and the last
// HistoryRetainEntries applied. It trims in steps of a sixteenth of what
// it keeps (at most 4,096 entries), so that Pebble holds few range
// deletions.
func (n *Node) trimHistory(applied uint64) error {
	keep, oldest := n.cfg.HistoryRetainEntries, n.oldestSnap.Load()
	if keep == 0 || oldest == 0 || applied <= keep {
		return nil
	}
	below, step := min(oldest+1, applied+1-keep), max(1, min(keep/16, 4096))
	if below < n.dir.History.From()+step {
		return nil
	}
	if err := n.dir.History.TrimBelow(below); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	return nil
}

// journalKeepingBytes is the lowest index from which the journal's
// entries up to applied take at most bytes: by the sizes of the entries
// applied when this node remembers them back to the journal's first
// (logBytes), else by Pebble's estimate of the journal's tables, looked
// at once a second at most (1 until then: keep all).
func (n *Node) journalKeepingBytes(applied, bytes uint64) (uint64, error) {
	if from, ok := n.logBytes.keepFrom(applied+1, n.dir.Journal.First(), bytes); ok {
		return from, nil
	}
	if time.Since(n.journalSized) < time.Second {
		return 1, nil
	}
	n.journalSized = time.Now()
	from, err := n.dir.Journal.KeepingBytes(bytes)
	if err != nil {
		return 0, fmt.Errorf("node: %w", err)
	}
	return from, nil
}

// ErrNoSnapshot: this node has no snapshot to send.
var ErrNoSnapshot = errors.New("node: no snapshot to send")

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
	return nil, snapshot.Info{}, ErrNoSnapshot
}

// ExportKeys writes this node's key store for a peer that installed this
// node's snapshot. It holds every record spilled up to the applied index,
// so every record the snapshot a peer took from here before needs.
func (n *Node) ExportKeys(w io.Writer) error {
	_, err := n.dir.Keys.Export(w)
	return err
}

// trimWhileLeading deletes log entries that no live member still needs:
// below both this leader's newest snapshot and every live member's applied
// index, keeping LogRetainEntries (at most LogRetainBytes) more. A member
// that comes back later, or lags more than LogLagMaxBytes behind, installs
// a snapshot instead.
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
	point := n.neededFrom(members)
	keep := n.keepFrom(point)
	if keep <= 1 {
		return nil
	}
	below, err := n.log.TrimBelow(keep)
	if err != nil {
		return err
	}
	n.cfg.Logger.Debug("log trimmed", "below", below)
	return nil
}

// neededFrom is where the log must stay whole from: this leader's newest
// snapshot, and every live member's applied index unless the member lags
// more than LogLagMaxBytes behind the newest entry.
func (n *Node) neededFrom(members []zkcoord.MemberRecord) uint64 {
	floor, bounded := n.logBytes.lagFloor(n.cfg.LogLagMaxBytes)
	point := n.snapIndex.Load()
	for _, m := range members {
		if bounded && m.Applied < floor {
			continue
		}
		point = min(point, m.Applied)
	}
	return point
}

// keepFrom is the lowest entry kept below point: LogRetainEntries back, or
// fewer when those are over LogRetainBytes.
func (n *Node) keepFrom(point uint64) uint64 {
	if point <= 1 {
		return 1
	}
	lowest := max(1, point-min(point-1, n.cfg.LogRetainEntries))
	if k, ok := n.logBytes.keepFrom(point, lowest, n.cfg.LogRetainBytes); ok {
		return k
	}
	return lowest
}
