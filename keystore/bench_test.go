package keystore

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
)

// BenchmarkApplyTransfers: transfers of 1,000 per entry under keys never
// seen before, each looked up in the store first: "v5" is the engine
// alone as bankd applied before keys were remembered by time, "v6-store"
// the same commands at body version 6 through a store on disk that
// already holds a million records (and takes every key that leaves the
// default window).
func BenchmarkApplyTransfers(b *testing.B) {
	b.Run("v5", func(b *testing.B) { benchTransfers(b, engine.BodyV5, nil) })
	b.Run("v6-store", func(b *testing.B) {
		s, err := Open(b.TempDir(), Options{RetainMs: engine.KeyRetainDefaultMs})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		fill(b, s, 1_000_000)
		benchTransfers(b, engine.BodyV6, s)
	})
}

// fill spills n records into s, as a day of other keys would have.
func fill(b *testing.B, s *Store, n int) {
	recs := make([]engine.KeyRecord, 0, 1000)
	for i := 0; i < n; i++ {
		recs = append(recs, engine.KeyRecord{Key: fmt.Sprintf("old-%d", i), Index: uint64(i/1000 + 1), TimeMs: 1, Code: engine.CodeOK, Balances: [2]uint64{5, 7}})
		if len(recs) == cap(recs) {
			if err := s.spill(uint64(i/1000+1), 1, recs); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	if err := s.Sync(0); err != nil {
		b.Fatal(err)
	}
}

func benchTransfers(b *testing.B, version uint32, s *Store) {
	const accounts, perEntry = 10_000, 1000
	e, _ := engine.New(engine.DefaultConfig())
	setup := make([]engine.Command, accounts)
	for i := range setup {
		setup[i] = engine.Command{Op: engine.OpCreateAccount, Key: fmt.Sprintf("c%d", i), Account: fmt.Sprintf("%010d", i), Name: "Bench", Amount: 1_000_000}
	}
	if _, err := e.Apply(&engine.Entry{Envelope: entry.Envelope{Index: 1, Epoch: 1, BodyVersion: version, TimeMs: 1}, Commands: setup}); err != nil {
		b.Fatal(err)
	}
	entries := make([]*engine.Entry, 0, b.N/perEntry+1)
	for n := 0; n < b.N; n += perEntry {
		cmds := make([]engine.Command, min(perEntry, b.N-n))
		for i := range cmds {
			k := n + i
			cmds[i] = engine.Command{Op: engine.OpTransfer, Key: fmt.Sprintf("t%d", k), Account: fmt.Sprintf("%010d", k%accounts), To: fmt.Sprintf("%010d", (k*7+1)%accounts), Amount: 1}
		}
		entries = append(entries, &engine.Entry{Envelope: entry.Envelope{BodyVersion: version}, Commands: cmds})
	}
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	for _, ent := range entries {
		ent.Index, ent.PrevHash, ent.Epoch, ent.TimeMs = e.Index()+1, e.LastHash(), 1, e.TimeMs()+1
		var err error
		if s == nil {
			_, err = e.Apply(ent)
		} else {
			_, err = s.Apply(e, ent)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiskPerKey: what a remembered key costs on disk, compacted,
// for keys as clients send them (a UUID under a customer's principal)
// spilled 1,000 per entry: b.N keys, reported per key.
func BenchmarkDiskPerKey(b *testing.B) {
	s, err := Open(b.TempDir(), Options{RetainMs: engine.KeyRetainDefaultMs})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const perEntry = 1000
	recs := make([]engine.KeyRecord, 0, perEntry)
	index, at := uint64(1_000_000), int64(1_800_000_000_000)
	for i := 0; i < b.N; i++ {
		key := fmt.Sprintf("c-0123456789abcdef\x00%08x-3b7d-4bad-9bdd-%012x", i*2654435761, i)
		recs = append(recs, engine.KeyRecord{Key: key, Index: index, TimeMs: at, Fingerprint: uint64(i) * 0x9e3779b97f4a7c15,
			Code: engine.CodeOK, Balances: [2]uint64{uint64(i%100_000) * 137, uint64(i%7_000) * 91}})
		if len(recs) == perEntry || i == b.N-1 {
			if err := s.spill(index, at, recs); err != nil {
				b.Fatal(err)
			}
			recs, index, at = recs[:0], index+1, at+7
		}
	}
	if err := s.Sync(0); err != nil {
		b.Fatal(err)
	}
	if err := s.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(s.DiskBytes())/float64(b.N), "disk-B/key")
}
