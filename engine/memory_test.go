package engine

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/zkbank/zkbank/engine/entry"
)

// BenchmarkMillionAccountsHeap measures the live heap of an engine holding
// a million accounts and a full idempotency window, created the way
// `bankctl bench` loads them (entries of 1,000 creates). It is the engine's
// share of bankd's resident memory.
func BenchmarkMillionAccountsHeap(b *testing.B) {
	const accounts, perEntry = 1_000_000, 1000
	for b.Loop() {
		before := liveHeap()
		e, _ := New(DefaultConfig())
		for start := 0; start < accounts; start += perEntry {
			cmds := make([]Command, perEntry)
			for i := range cmds {
				acct := fmt.Sprintf("M-%07d", start+i)
				cmds[i] = Command{Op: OpCreateAccount, Key: "m-" + acct, Account: acct, Name: "bench", Amount: 100}
			}
			ent := &Entry{Envelope: entry.Envelope{Index: e.Index() + 1, Epoch: 1, PrevHash: e.LastHash(), BodyVersion: BodyV1}, Commands: cmds}
			if _, err := e.Apply(ent); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(liveHeap()-before)/(1<<20), "live-MB")
		runtime.KeepAlive(e)
	}
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
