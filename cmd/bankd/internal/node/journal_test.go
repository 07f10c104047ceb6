package node_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/journal"
)

// TestTheJournalKeepsWhatItIsTold: with JournalRetainEntries (n1), or
// JournalRetainBytes of less than one entry (n2), a node's journal keeps
// that many entries below the newest, never fewer than its oldest
// snapshot needs; a node restarts from what is left and catches up.
// Without either (n3), every entry stays.
func TestTheJournalKeepsWhatItIsTold(t *testing.T) {
	const retain = 5
	c := newInmemTuned(t, func(cfg *node.Config) {
		cfg.SnapshotEveryEntries, cfg.SnapshotRetain = 10, 2
		switch cfg.ID {
		case "n1":
			cfg.JournalRetainEntries = retain
		case "n2":
			cfg.JournalRetainBytes = 1
		}
	}, "n1", "n2", "n3")
	leader := c.waitLeader()
	write(t, leader, engine.Command{Op: engine.OpCreateAccount, Key: "open", Account: "A", Name: "Ada"})
	for i := range 60 {
		write(t, leader, deposit("A", fmt.Sprintf("d-%d", i)))
	}
	d := c.converged()
	for _, id := range []string{"n1", "n2", "n3"} {
		c.stop(id)
		j, err := journal.Open(filepath.Join(c.dir, id, "journal"), journal.Options{})
		if err != nil {
			t.Fatal(err)
		}
		first, last := j.First(), j.Last()
		j.Close()
		switch {
		case id == "n3" && first != 1:
			t.Fatalf("n3 keeps every entry, yet its journal starts at %d", first)
		case id == "n1" && (first == 1 || last-first+1 < retain || last-first+1 > retain+3*10):
			t.Fatalf("n1's journal holds %d..%d: want at least the last %d, and no more than its two snapshots need", first, last, retain)
		case id == "n2" && (first == 1 || last-first+1 > 3*10):
			t.Fatalf("n2's journal holds %d..%d: want no more than its two snapshots need", first, last)
		}
		c.start(id)
	}
	c.waitLeader()
	write(t, c.waitLeader(), deposit("A", "after-the-restarts"))
	if got := c.converged(); got.Totals.Balance != d.Totals.Balance+1 {
		t.Fatalf("after restarting from trimmed journals: total %d, want %d", got.Totals.Balance, d.Totals.Balance+1)
	}
}
