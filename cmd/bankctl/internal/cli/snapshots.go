package cli

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/zkbank/zkbank/cmd/internal/audit"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/snapshot"
)

func (a *app) snapshotCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "snapshot", Short: "List, inspect and verify snapshot files offline"}
	var dir string
	ls := &cobra.Command{
		Use: "ls --data-dir DIR", Short: "List a data dir's snapshots with their header fields and checksum status", Args: cobra.NoArgs,
		Example: "  bankctl snapshot ls --data-dir /tmp/audit",
		RunE: func(c *cobra.Command, _ []string) error {
			paths, err := snapshotPaths(dir)
			if err != nil {
				return err
			}
			return a.showSnapshots(paths, false)
		},
	}
	dataDirOnly(ls, &dir)
	inspect := &cobra.Command{
		Use: "inspect FILE", Short: "Show a snapshot's header, verify its checksum and recompute its state hash", Args: cobra.ExactArgs(1),
		Example: "  bankctl snapshot inspect /tmp/audit/snapshots/snap-00000000000000010000.zks",
		RunE:    func(c *cobra.Command, args []string) error { return a.showSnapshots(args, true) },
	}
	var vdir string
	verify := &cobra.Command{
		Use: "verify [--data-dir DIR | FILE...]", Short: "Verify snapshots (checksum and recomputed state hash); exits 5 on damage",
		Example: "  bankctl snapshot verify --data-dir /tmp/audit\n  bankctl snapshot verify /tmp/audit/snapshots/*.zks",
		RunE: func(c *cobra.Command, args []string) error {
			if vdir != "" {
				paths, err := snapshotPaths(vdir)
				if err != nil {
					return err
				}
				if len(paths) == 0 {
					return fmt.Errorf("%s holds no snapshots to verify", vdir)
				}
				args = append(args, paths...)
			}
			if len(args) == 0 {
				return usageError{fmt.Errorf("give --data-dir or snapshot files")}
			}
			return a.showSnapshots(args, true)
		},
	}
	verify.Flags().StringVar(&vdir, "data-dir", "", "verify every snapshot of this data dir")
	cmd.AddCommand(ls, inspect, verify)
	return cmd
}

func snapshotPaths(dir string) ([]string, error) {
	d, err := audit.Open(dir, nil) // lists files; no entry is read
	if err != nil {
		return nil, err
	}
	defer d.Close()
	list, err := d.Snapshots.List()
	if err != nil {
		return nil, err
	}
	paths := make([]string, len(list))
	for i, s := range list {
		paths[i] = s.Path
	}
	return paths, nil
}

type snapshotReport struct {
	Path         string `json:"path"`
	Status       string `json:"status"` // ok, or what is wrong
	Index        uint64 `json:"index"`
	Epoch        uint64 `json:"epoch"`
	EntryHash    string `json:"entry_hash"`
	StateHash    string `json:"state_hash"`
	Accounts     uint64 `json:"accounts"`
	TotalBalance uint64 `json:"total_balance"`
	Created      string `json:"created"`
	Bytes        int64  `json:"bytes"`
}

// checkSnapshot verifies one file as it streams it (checksums, header),
// and with deep also restores it and recomputes the state hash.
func checkSnapshot(path string, deep bool) snapshotReport {
	r := snapshotReport{Path: path, Status: "ok"}
	m, err := snapshot.Verify(path)
	if err != nil {
		r.Status = err.Error()
		return r
	}
	r.Index, r.Epoch, r.EntryHash, r.StateHash = m.Index, m.Epoch, m.EntryHash.String(), m.StateHash.String()
	r.Accounts, r.TotalBalance, r.Bytes = m.Accounts, m.TotalBalance, m.Size()
	r.Created = time.UnixMilli(m.CreatedMs).UTC().Format(time.RFC3339)
	if deep {
		e, _, err := snapshot.Load(path, engine.DefaultConfig())
		switch {
		case err != nil:
			r.Status = "state does not restore: " + err.Error()
		case e.StateHash() != m.StateHash:
			r.Status = fmt.Sprintf("recomputed state hash %s differs", e.StateHash())
		default:
			r.Status = "ok (checksum, state hash recomputed)"
		}
	}
	return r
}

func (a *app) showSnapshots(paths []string, deep bool) error {
	reports := []snapshotReport{}
	bad := 0
	for _, p := range paths {
		r := checkSnapshot(p, deep)
		if r.Status != "ok" && r.Status != "ok (checksum, state hash recomputed)" {
			bad++
		}
		reports = append(reports, r)
	}
	asJSON, err := a.jsonOutput()
	if err != nil {
		return err
	}
	if asJSON {
		err = printJSON(a.stdout, reports)
	} else {
		var rows [][]string
		for _, r := range reports {
			rows = append(rows, []string{filepath.Base(r.Path), fmt.Sprint(r.Index), fmt.Sprint(r.Epoch), fmt.Sprint(r.Accounts),
				fmt.Sprint(r.TotalBalance), fmt.Sprintf("%.16s", r.StateHash), r.Created, r.Status})
		}
		table(a.stdout, []string{"FILE", "INDEX", "EPOCH", "ACCOUNTS", "TOTAL", "STATE HASH", "CREATED", "STATUS"}, rows)
	}
	if err == nil && bad > 0 {
		err = fmt.Errorf("%w: %d of %d snapshots are damaged", audit.ErrMismatch, bad, len(paths))
	}
	return err
}
