package node_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/history"
	"github.com/zkbank/zkbank/journal"
)

// TestTheJournalKeepsWhatItIsTold: with JournalRetainEntries (n1), or
// JournalRetainBytes of less than one entry (n2), a node's journal keeps
// that many entries below the newest, never fewer than its oldest
// snapshot needs; a node restarts from what is left and catches up.
// Without either (n3), every entry stays. n1's history keeps as many
// entries (HistoryRetainEntries) and goes on from there after a restart.
func TestTheJournalKeepsWhatItIsTold(t *testing.T) {
	// n1's history keeps more than two snapshots' worth, so that one
	// started again from the newest snapshot would start later than it.
	const retain, historyRetain = 5, 25
	c := newInmemTuned(t, func(cfg *node.Config) {
		cfg.SnapshotEveryEntries, cfg.SnapshotRetain = 10, 2
		switch cfg.ID {
		case "n1":
			cfg.JournalRetainEntries, cfg.HistoryRetainEntries = retain, historyRetain
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
	c.mu.Lock()
	historyFrom := map[string]uint64{"n1": c.nodes["n1"].History().From(), "n3": c.nodes["n3"].History().From()}
	c.mu.Unlock()
	if historyFrom["n1"] != d.Index+1-historyRetain || historyFrom["n3"] != 1 {
		t.Fatalf("histories start at %v; n1 keeps the last %d of %d entries, n3 all", historyFrom, historyRetain, d.Index)
	}
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
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, from := range historyFrom {
		h := c.nodes[id].History()
		lines := 0
		err := h.Statement("A", history.EndOf(h.From()-1), func(ev history.Event) bool { lines++; return ev.Index >= from })
		if h.From() < from || h.From() > from+5 || err != nil || lines == 0 { // a few entries came since (terms, a deposit)
			t.Fatalf("%s's history after the restart starts at %d (at %d before), its statement of A: %d lines, %v", id, h.From(), from, lines, err)
		}
	}
}
