package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/zkcoord"
)

const restoreUsage = `bankd restore: bring the bank back into a ZooKeeper ensemble that lost its data.

Run it while no bankd runs anywhere, with the settings the host's bankd
runs with (--config), then start bankd on every host. The ZooKeeper
namespace must hold no log: a restore never writes over one, nor into a
bank that ran again since.

Without --backup it restores from this host's data dir, after replaying
its journal with every signature verified. Run it on every host that kept
its data dir, in any order: the log goes on after the furthest journal
(one that forked from it is refused), so no acknowledged write is lost.

With --backup FILE (bankctl backup wrote it) it restores into an empty
data dir from the backup, when no data dir survived, and says the index
it goes back to: writes acknowledged after it are lost. Start the other
hosts with empty data dirs.

Either way the log goes on under an epoch above every old one, the old
entries keep verifying, and this host keeps a snapshot at the restored
index for the others to install (docs/deployment.md, "Disaster
recovery").

Usage: bankd restore --config FILE [--backup FILE] [flags]

Flags (bankd's own, and --backup):
`

// restoreMain runs bankd restore and returns its exit code: 0 restored,
// 1 failed, 2 bad flags.
func restoreMain(args []string, stdout, stderr io.Writer) int {
	var backup string
	o, err := parseOptionsOf(args, stderr, restoreUsage, func(fs *flag.FlagSet) {
		fs.StringVar(&backup, "backup", "", "restore from this backup file (bankctl backup) into an empty data dir")
	})
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "bankd restore: %v\nRun bankd restore --help for the flags.\n", err)
		return 2
	}
	log := o.logger(stderr)
	got, err := restore(o, backup, log)
	if err != nil {
		log.Error("restore failed; ZooKeeper was not changed (its one write is the last step, and atomic)", "err", err)
		return 1
	}
	report(stdout, got, backup, o.zkRoot)
	return 0
}

func restore(o *options, backup string, log *slog.Logger) (node.Restored, error) {
	mat, err := o.loadTLS(log)
	if err != nil {
		return node.Restored{}, err
	}
	zkMat, err := o.loadZooKeeperTLS(mat)
	if err != nil {
		return node.Restored{}, err
	}
	zcfg, err := o.zookeeper(zkMat, log)
	if err != nil {
		return node.Restored{}, err
	}
	sealing, err := o.sealConfig(mat)
	if err != nil {
		return node.Restored{}, err
	}
	var from io.Reader
	if backup != "" {
		f, err := os.Open(backup)
		if err != nil {
			return node.Restored{}, fmt.Errorf("--backup: %w", err)
		}
		defer f.Close()
		from = f
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cfg := node.Config{ID: o.id, DataDir: o.dataDir, ZooKeeper: zcfg, SegmentSize: o.segmentSize,
		SnapshotRetain: o.snapshotRetain, Seal: sealing, Logger: log}
	return node.Restore(ctx, cfg, from)
}

func report(w io.Writer, r node.Restored, backup, root string) {
	at := time.UnixMilli(r.TimeMs).UTC().Format(time.RFC3339Nano)
	if r.FromBackup {
		fmt.Fprintf(w, "restored from the backup %s: the bank is back at index %d (log time %s); writes acknowledged after index %d are lost\n", backup, r.Index, at, r.Index)
	} else {
		fmt.Fprintf(w, "this data dir's journal goes up to index %d (log time %s)\n", r.Index, at)
	}
	if r.FromBackup {
		fmt.Fprintf(w, "verified: the backup's snapshot (checksum, state hash, signature); %d accounts, state hash %s\n", r.Accounts, r.StateHash)
	} else {
		fmt.Fprintf(w, "verified: %d sealed entries' signatures and the snapshot the journal starts from; %d accounts, state hash %s\n", r.Verified, r.Accounts, r.StateHash)
	}
	if r.Snapshot {
		fmt.Fprintf(w, "wrote a snapshot at index %d for the other nodes to install\n", r.Index)
	}
	switch r.Result {
	case zkcoord.Seeded:
		fmt.Fprintf(w, "ZooKeeper %s: restored; the log goes on after index %d, under an epoch above %d\n", root, r.Index, r.Epoch)
	case zkcoord.MovedOn:
		fmt.Fprintf(w, "ZooKeeper %s: an earlier restore was behind this journal; the log now goes on after index %d, under an epoch above %d\n", root, r.Index, r.Epoch)
	case zkcoord.Kept:
		fmt.Fprintf(w, "ZooKeeper %s: kept as an earlier restore left it, at or past index %d (this journal adds nothing)\n", root, r.Index)
	}
	fmt.Fprintln(w, "run bankd restore on every host that kept its data dir, then start bankd on every host")
}
