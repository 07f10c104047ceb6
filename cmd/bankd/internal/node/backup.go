package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/zkbank/zkbank/seal"
	"github.com/zkbank/zkbank/snapshot"
)

// ErrNoBackup: this node cannot write a backup (an unsealed cluster, or
// nothing applied yet).
var ErrNoBackup = errors.New("node: no backup")

// Backup is a snapshot taken for a backup, open for reading. Its file is
// one of the node's snapshots: it lasts until pruned, and stays readable
// until closed.
type Backup struct {
	Info  snapshot.Info
	f     *os.File
	trust *seal.Trust
}

// Backup snapshots the state as it is now (waiting for a snapshot in
// progress to finish) and opens it for WriteTo.
func (n *Node) Backup(ctx context.Context) (*Backup, error) {
	if n.cfg.Seal == nil {
		return nil, fmt.Errorf("%w: the log is not sealed here (--insecure without data keys), so a backup could not be encrypted", ErrNoBackup)
	}
	if n.Applied() == 0 {
		return nil, fmt.Errorf("%w: nothing applied yet", ErrNoBackup)
	}
	if n.stopping.Load() {
		return nil, ErrStopped
	}
	for !n.snapBusy.CompareAndSwap(false, true) {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("node: backup: waiting for a snapshot in progress: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	info, err := n.snapshotNow()
	if err != nil {
		return nil, fmt.Errorf("node: backup: %w", err)
	}
	f, err := os.Open(info.Path)
	if err != nil {
		return nil, fmt.Errorf("node: backup: %w", err)
	}
	return &Backup{Info: info, f: f, trust: n.cfg.Seal.Trust}, nil
}

// snapshotNow writes a snapshot of the current state, with snapBusy held
// (and released here), on the snapshot writer so that the data dir does
// not close under it.
func (n *Node) snapshotNow() (snapshot.Info, error) {
	type result struct {
		info snapshot.Info
		err  error
	}
	done := make(chan result, 1)
	started := time.Now()
	n.mu.Lock()
	c, err := n.eng.Capture(n.mu.RLocker())
	n.mu.Unlock()
	if err != nil {
		n.snapBusy.Store(false)
		return snapshot.Info{}, err
	}
	n.snapWriter.Go(func() {
		defer n.snapBusy.Store(false)
		info, err := n.saveSnapshot(c, started)
		done <- result{info, err}
	})
	r := <-done
	return r.info, r.err
}

// WriteTo writes the backup file (docs/format.md, "Backup file"): the
// snapshot sealed with the newest data key.
func (b *Backup) WriteTo(w io.Writer) (int64, error) {
	sw, err := b.trust.SealBackup(w)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(sw, b.f)
	if err != nil {
		return n, fmt.Errorf("node: backup: %w", err)
	}
	return n, sw.Close()
}

// Size is the length of the backup file WriteTo writes.
func (b *Backup) Size() int64 { return b.trust.BackupSize(b.Info.Size) }

// Close closes the snapshot file.
func (b *Backup) Close() error { return b.f.Close() }
