package snapshot

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
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
		ent := &engine.Entry{Envelope: entry.Envelope{Index: e.Index() + 1, Epoch: 1, PrevHash: e.LastHash()}, Commands: cmds}
		if _, err := engine.EncodeEntry(ent); err != nil {
			b.Fatal(err)
		}
		if _, err := e.Apply(ent); err != nil {
			b.Fatal(err)
		}
	}
	return e
}

// BenchmarkMillionAccounts reports, for a snapshot of 1,000,000 accounts,
// the replica loop's pause (freezing an engine.Capture), the time to
// stream it into a file and then to checksum, fsync and rename it, and the
// time to open, verify and restore it.
func BenchmarkMillionAccounts(b *testing.B) {
	e := millionAccounts(b)
	store, err := NewStore(b.TempDir(), 3)
	if err != nil {
		b.Fatal(err)
	}
	var pause, capture, write, load time.Duration
	var size int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		c, err := e.Capture(&sync.Mutex{})
		if err != nil {
			b.Fatal(err)
		}
		pause += time.Since(start)
		p, err := store.Begin(c, 0)
		c.Release()
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
		if _, _, err := Load(info.Path, e.Config()); err != nil {
			b.Fatal(err)
		}
		load += time.Since(start)
	}
	b.ReportMetric(pause.Seconds()/float64(b.N), "pause-s")
	b.ReportMetric(capture.Seconds()/float64(b.N), "capture-s")
	b.ReportMetric(write.Seconds()/float64(b.N), "write-s")
	b.ReportMetric(load.Seconds()/float64(b.N), "load-s")
	b.ReportMetric(float64(size)/1e6, "MB")
}
