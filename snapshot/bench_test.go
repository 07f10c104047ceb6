package snapshot

import (
	"fmt"
	"testing"
	"time"

	"github.com/zkbank/zkbank/engine"
)

// millionAccounts builds an engine holding 1,000,000 accounts (and a full
// idempotency window from creating them).
func millionAccounts(b *testing.B) *engine.Engine {
	b.Helper()
	e, _ := engine.New(engine.DefaultConfig())
	const total, per = 1_000_000, 10_000
	for i := 0; i < total; i += per {
		cmds := make([]engine.Command, per)
		for k := range cmds {
			n := i + k
			cmds[k] = engine.Command{Op: engine.OpCreateAccount, Key: fmt.Sprintf("create-%d", n), Name: fmt.Sprintf("Customer %d", n), Amount: uint64(n % 100_000)}
		}
		ent := &engine.Entry{Index: e.Index() + 1, Epoch: 1, PrevHash: e.LastHash(), Commands: cmds}
		if _, err := engine.EncodeEntry(ent); err != nil {
			b.Fatal(err)
		}
		if _, err := e.Apply(ent); err != nil {
			b.Fatal(err)
		}
	}
	return e
}

// BenchmarkMillionAccounts reports the time to capture and save, and to
// open, verify and restore, a snapshot of 1,000,000 accounts.
func BenchmarkMillionAccounts(b *testing.B) {
	e := millionAccounts(b)
	store, err := NewStore(b.TempDir(), 3)
	if err != nil {
		b.Fatal(err)
	}
	var capture, write, load time.Duration
	var size int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		p, err := store.Begin(e, 0)
		if err != nil {
			b.Fatal(err)
		}
		capture += time.Since(start)
		info, err := p.Commit()
		if err != nil {
			b.Fatal(err)
		}
		write += time.Since(start)
		size = info.Size
		start = time.Now()
		got, err := Open(info.Path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := got.Restore(e.Config()); err != nil {
			b.Fatal(err)
		}
		load += time.Since(start)
	}
	b.ReportMetric(capture.Seconds()/float64(b.N), "capture-s")
	b.ReportMetric(write.Seconds()/float64(b.N), "write-s")
	b.ReportMetric(load.Seconds()/float64(b.N), "load-s")
	b.ReportMetric(float64(size)/1e6, "MB")
}
