package cli

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/zkbank/zkbank/cmd/internal/audit"
	"github.com/zkbank/zkbank/cmd/internal/client"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/seal"
	"github.com/zkbank/zkbank/snapshot"
)

// backupTimeout is how long a backup may take unless --timeout says: a
// bank of millions of accounts is a file of hundreds of megabytes.
const backupTimeout = 30 * time.Minute

func (a *app) backupCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "backup --out FILE",
		Short: "Write an encrypted backup of the live bank to a file, verified before it is kept (admin)",
		Long: `Ask a node for a snapshot of the bank as it is now, sealed with the
cluster's newest data key (AES-256-GCM in chunks), and write it to FILE.
Before FILE appears, bankctl opens the copy it received with the data keys
and checks all of it: the snapshot's checksum, its recomputed state hash,
and its signature by a node certificate of the CA (--cacert). A file that
does not verify is deleted and bankctl exits 5; an existing FILE is never
replaced.

The file holds what a restore needs to continue the log after its index:
the state, and the index, epoch and hash of the last entry it applied
(bankd restore --backup, docs/deployment.md, "Disaster recovery"). It
needs the data keys to open: keep the keys apart from the backups.

The download may take long: --timeout (default 30m here) bounds it, and
each try at one endpoint gets as long unless --attempt-timeout says.`,
		Example: "  bankctl backup --out /var/backups/zkbank/bank-$(date +%F).zkbackup\n" +
			"  bankctl backup --out bank.zkbackup --cacert certs/ca.crt --token \"$ADMIN_TOKEN\"",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if !c.Flags().Changed("timeout") {
				a.timeout = backupTimeout
			}
			if !c.Flags().Changed("attempt-timeout") {
				a.attemptTimeout = a.timeout
			}
			return a.backup(out)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the file to write (required; never replaced)")
	_ = cmd.MarkFlagRequired("out")
	a.sealed.add(cmd)
	return cmd
}

// backupReport is what bankctl backup says of the file it kept.
type backupReport struct {
	File         string `json:"file"`
	Bytes        int64  `json:"bytes"`
	Index        uint64 `json:"index"`
	Epoch        uint64 `json:"epoch"`
	LogTime      string `json:"log_time"`
	EntryHash    string `json:"entry_hash"`
	StateHash    string `json:"state_hash"`
	Accounts     uint64 `json:"accounts"`
	TotalBalance uint64 `json:"total_balance"`
	KeyID        uint32 `json:"key_id"`
	From         string `json:"from"`
}

func (a *app) backup(out string) error {
	trust, err := a.trust(&a.sealed)
	if err != nil {
		return err
	}
	if trust == nil || trust.Roots == nil || trust.Cluster == nil {
		return usageError{errors.New("a backup is verified before it is kept: give --cacert with data.keys and cluster.id beside it (or --data-keys and --cluster-id)")}
	}
	if _, err := os.Lstat(out); err == nil {
		return usageError{fmt.Errorf("%s exists; a backup never replaces a file", out)}
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".bankctl-backup-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	var bar *progress
	dl := &client.Download{File: tmp, ContentType: wire.ContentBackup, Progress: func(done, total int64) {
		if bar == nil && total > 0 {
			bar = newProgress(a.stderr, "backup", int(total))
		}
		if bar != nil {
			bar.update(int(done))
		}
	}}
	resp, err := a.write("POST", "/v1/admin/backup", nil, "", dl)
	if err != nil {
		return err
	}
	rep, err := verifyBackup(tmp, trust)
	if err != nil {
		return err
	}
	if err := keep(tmp, out); err != nil {
		return err
	}
	rep.File, rep.Bytes, rep.From = out, dl.Bytes, resp.Endpoint
	if done, err := a.showJSON(rep); done {
		return err
	}
	fmt.Fprintf(a.stdout, "backup of index %d (epoch %d, log time %s): %d accounts, total %d, state hash %s\n",
		rep.Index, rep.Epoch, rep.LogTime, rep.Accounts, rep.TotalBalance, rep.StateHash)
	fmt.Fprintf(a.stdout, "verified (checksum, state hash, signature) and written to %s (%d bytes, data key %d) from %s\n",
		out, rep.Bytes, rep.KeyID, rep.From)
	return nil
}

// verifyBackup reads the downloaded file back and checks all of it.
func verifyBackup(f *os.File, trust *seal.Trust) (backupReport, error) {
	if err := f.Sync(); err != nil {
		return backupReport{}, fmt.Errorf("backup: %w", err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		return backupReport{}, fmt.Errorf("backup: %w", err)
	}
	e, meta, kid, err := trust.ReadBackup(bufio.NewReaderSize(f, 1<<20), engine.DefaultConfig())
	if err != nil {
		return backupReport{}, fmt.Errorf("%w: the backup received does not verify, and was not kept: %w", audit.ErrMismatch, err)
	}
	return reportOf(meta, e, kid), nil
}

func reportOf(meta snapshot.Meta, e *engine.Engine, kid uint32) backupReport {
	return backupReport{Index: meta.Index, Epoch: meta.Epoch, LogTime: wire.TimeOf(e.TimeMs()),
		EntryHash: meta.EntryHash.String(), StateHash: meta.StateHash.String(), Accounts: meta.Accounts,
		TotalBalance: meta.TotalBalance, KeyID: kid}
}

// keep gives the verified file its name: a hard link, which fails rather
// than replace a file that appeared meanwhile, then the directory synced.
func keep(tmp *os.File, out string) error {
	if err := os.Link(tmp.Name(), out); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	d, err := os.Open(filepath.Dir(out))
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("backup: sync %s: %w", filepath.Dir(out), err)
	}
	return nil
}
