package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/zkbank/zkbank/cmd/internal/audit"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
	"github.com/zkbank/zkbank/journal/datadir"
	"github.com/zkbank/zkbank/zkcoord"
)

// Restored says where a restored log goes on.
type Restored struct {
	Index      uint64 // the last entry the bank keeps
	Epoch      uint64 // its epoch; the next leader's is above it
	TimeMs     int64  // its time
	Accounts   uint64
	StateHash  string
	Verified   uint64 // sealed entries of the journal whose signature verified
	Snapshot   bool   // a snapshot at Index was written for the others to install
	FromBackup bool
	Result     zkcoord.RestoreResult // seeded, moved on from an earlier restore, or kept it
}

// ErrNotEmptyDataDir: a restore from a backup found state in the data dir.
var ErrNotEmptyDataDir = errors.New("node: the data dir is not empty")

// Restore brings the bank back into a ZooKeeper namespace that lost its
// log (docs/deployment.md, "Disaster recovery"), while no bankd runs. From
// this node's data dir: the journal is replayed with every signature
// verified, and the log goes on after its last entry. From a backup
// (backup not nil, into an empty data dir): the backup's snapshot is
// verified and installed, and the log goes on after its index. Either way
// a snapshot at that index is left in the data dir, for the other nodes
// to install when they start, and the namespace gets the epoch, the trim
// point and the cluster version (zkcoord.Session.Restore).
func Restore(ctx context.Context, cfg Config, backup io.Reader) (Restored, error) {
	def := DefaultConfig() // a restore serves nothing: no address, no transport
	setDefault(&cfg.SnapshotRetain, def.SnapshotRetain)
	if cfg.Engine == (engine.Config{}) {
		cfg.Engine = def.Engine
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DataDir == "" {
		return Restored{}, errors.New("node: restore: data dir is empty")
	}
	if cfg.Seal == nil {
		return Restored{}, errors.New("node: restore: a restore verifies the log, which needs the data keys and the CA (not --insecure)")
	}
	var out Restored
	if backup != nil {
		if err := installBackup(cfg, backup); err != nil {
			return out, err
		}
		out.FromBackup = true
	}
	rep, err := audit.Replay(cfg.DataDir, audit.Options{Trust: cfg.Seal.Trust, Progress: everyFewSeconds(cfg.Logger)})
	if err != nil {
		return out, fmt.Errorf("node: restore: the data dir does not verify: %w", err)
	}
	if rep.Index == 0 {
		return out, errors.New("node: restore: the data dir holds no entry to restore")
	}
	n := &Node{cfg: cfg}
	if err := n.openDataDir(); err != nil {
		return out, err
	}
	defer n.dir.Close()
	if n.eng.StateHash() != rep.StateHash {
		return out, fmt.Errorf("node: restore: the replay and the restart disagree at %d (state %s and %s)", rep.Index, rep.StateHash, n.eng.StateHash())
	}
	out.Index, out.Epoch, out.TimeMs, out.Verified = n.eng.Index(), n.eng.Epoch(), n.eng.TimeMs(), rep.Verified
	out.Accounts, out.StateHash = n.eng.Totals().Accounts, rep.StateHash.String()
	if n.snapIndex.Load() != out.Index {
		if _, err := n.dir.SaveSnapshot(n.eng, time.Now().UnixMilli()); err != nil {
			return out, fmt.Errorf("node: restore: snapshot at %d: %w", out.Index, err)
		}
		out.Snapshot = true
	}
	out.Result, err = n.seed(ctx)
	return out, err
}

// everyFewSeconds logs a long replay's progress, at most every 5 s.
func everyFewSeconds(log *slog.Logger) func(done, total uint64) {
	last := time.Now()
	return func(done, total uint64) {
		if time.Since(last) >= 5*time.Second {
			last = time.Now()
			log.Info("restore: verifying the journal", "entries", done, "of", total)
		}
	}
}

// seed writes the restore into ZooKeeper.
func (n *Node) seed(ctx context.Context) (zkcoord.RestoreResult, error) {
	sess, err := zkcoord.Connect(ctx, n.cfg.ZooKeeper)
	if err != nil {
		return 0, fmt.Errorf("node: restore: %w", err)
	}
	defer sess.Close()
	head := zkcoord.Head{Index: n.eng.Index(), Hash: n.eng.LastHash(), Epoch: n.eng.Epoch(), BodyVersion: n.eng.BodyVersion(), TimeMs: n.eng.TimeMs()}
	cv := zkcoord.ClusterVersion{BodyVersion: n.eng.BodyVersion(), Since: n.eng.VersionSince()}
	res, err := sess.Restore(head, cv, n.cfg.ID, n.journalHash)
	if err != nil {
		return 0, fmt.Errorf("node: restore: %w", err)
	}
	return res, nil
}

// journalHash is the hash of the journal's entry at index, or of the one
// just below its first.
func (n *Node) journalHash(index uint64) (entry.Hash, bool) {
	if base, hash := n.dir.Journal.Base(); index == base {
		return hash, true
	}
	e, err := n.dir.Journal.Get(index)
	if err != nil {
		return entry.Hash{}, false
	}
	return e.Hash(), true
}

// installBackup puts a backup's snapshot into an empty data dir, checked
// as it is written and its signature verified before the journal is set
// to go on after it.
func installBackup(cfg Config, backup io.Reader) error {
	plain, _, err := cfg.Seal.Trust.OpenBackup(backup)
	if err != nil {
		return fmt.Errorf("node: restore: %w", err)
	}
	dir, err := datadir.Open(cfg.DataDir, datadir.Options{Engine: cfg.Engine, Retain: cfg.SnapshotRetain,
		Decode: cfg.Seal.Trust.DecodeRaw, CheckPeerSnapshot: cfg.Seal.Trust.CheckSnapshot})
	if err != nil {
		return fmt.Errorf("node: restore: open data dir: %w", err)
	}
	defer dir.Close()
	snaps, err := dir.Snapshots.List()
	if err != nil {
		return fmt.Errorf("node: restore: %w", err)
	}
	if last := dir.Journal.Last(); last > 0 || len(snaps) > 0 {
		return fmt.Errorf("%w: %s holds entries up to %d and %d snapshots; restore from it without --backup, or empty it first",
			ErrNotEmptyDataDir, cfg.DataDir, last, len(snaps))
	}
	info, err := dir.Snapshots.Receive(plain)
	if err != nil {
		return fmt.Errorf("node: restore: the backup's snapshot: %w", err)
	}
	// A backup holds the state and its in-memory window of keys, not the
	// older records of the key store: after a restore from one, a key
	// first used before the window is applied as new (docs/operations.md,
	// "The key store"). The empty store vouches for the backup.
	if err := dir.Keys.Sync(info.Index); err != nil {
		return fmt.Errorf("node: restore: %w", err)
	}
	if _, _, err := dir.InstallSaved(info); err != nil {
		return fmt.Errorf("node: restore: %w", err)
	}
	return nil
}
