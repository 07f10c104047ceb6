package engine

import (
	"fmt"
	"hash/maphash"
	"runtime"
	"testing"

	"github.com/zkbank/zkbank/engine/entry"
)

// BenchmarkApplyTransfers applies entries of 1000 transfers among 10,000
// accounts, the shape the leader's batcher produces, with and without a
// Capture open (which copies each account aside before its first change).
// Decoding is measured separately by BenchmarkDecodeEntry.
func BenchmarkApplyTransfers(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchApplyTransfers(b, false) })
	b.Run("capture-open", func(b *testing.B) { benchApplyTransfers(b, true) })
}

func benchApplyTransfers(b *testing.B, capture bool) {
	const accounts, perEntry = 10_000, 1000
	e, _ := New(DefaultConfig())
	setup := make([]Command, accounts)
	for i := range setup {
		setup[i] = Command{Op: OpCreateAccount, Key: fmt.Sprintf("c%d", i), Account: fmt.Sprintf("%010d", i), Name: "Bench", Amount: 1_000_000}
	}
	mustApply(b, e, nextEntry(b, e, setup...))
	entries := make([]*Entry, 0, b.N/perEntry+1)
	for n := 0; n < b.N; n += perEntry {
		cmds := make([]Command, min(perEntry, b.N-n))
		for i := range cmds {
			k := n + i
			cmds[i] = Command{Op: OpTransfer, Key: fmt.Sprintf("t%d", k), Account: fmt.Sprintf("%010d", k%accounts), To: fmt.Sprintf("%010d", (k*7+1)%accounts), Amount: 1}
		}
		entries = append(entries, &Entry{Envelope: entry.Envelope{BodyVersion: BodyV1}, Commands: cmds})
	}
	if capture {
		c, err := e.Capture(nopLock{})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Release()
	}
	runtime.GC() // setup garbage is not the engine's cost
	b.ReportAllocs()
	b.ResetTimer()
	for _, ent := range entries {
		ent.Index, ent.PrevHash, ent.Epoch = e.Index()+1, e.LastHash(), 1
		if _, err := e.Apply(ent); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
}

// BenchmarkApplyHolds applies entries of 1000 hold ops among 10,000
// accounts in a version 5 log: one entry creates 1000 holds, the next
// captures half of them (part of each) and voids the rest, so every hold
// opens and closes and the closed ones are forgotten past the state's
// 100,000.
func BenchmarkApplyHolds(b *testing.B) {
	const accounts, perEntry = 10_000, 1000
	e, _ := New(DefaultConfig())
	setup := make([]Command, accounts)
	for i := range setup {
		setup[i] = Command{Op: OpCreateAccount, Key: fmt.Sprintf("c%d", i), Account: fmt.Sprintf("%010d", i), Name: "Bench", Amount: 1_000_000}
	}
	mustApply(b, e, nextEntryAt(b, e, BodyV5, 1, setup...))
	var entries []*Entry
	for n := 0; n < b.N; n += 2 * perEntry {
		creates, closes := make([]Command, perEntry), make([]Command, perEntry)
		for i := range creates {
			k := n/2 + i
			creates[i] = Command{Op: OpCreateHold, Key: fmt.Sprintf("h%d", k), Account: fmt.Sprintf("%010d", k%accounts), To: fmt.Sprintf("%010d", (k*7+1)%accounts), Amount: 10, ExpiresInMs: 60_000}
			closes[i] = Command{Op: OpCaptureHold, Key: fmt.Sprintf("x%d", k), Hold: uint64(k + 1), Amount: 4}
			if i%2 == 1 {
				closes[i] = Command{Op: OpVoidHold, Key: fmt.Sprintf("x%d", k), Hold: uint64(k + 1)}
			}
		}
		entries = append(entries, &Entry{Envelope: entry.Envelope{BodyVersion: BodyV5}, Commands: creates},
			&Entry{Envelope: entry.Envelope{BodyVersion: BodyV5}, Commands: closes})
	}
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	for _, ent := range entries {
		ent.Index, ent.PrevHash, ent.Epoch, ent.TimeMs = e.Index()+1, e.LastHash(), 1, 1
		res, err := e.Apply(ent)
		if err != nil || res[0].Code != CodeOK {
			b.Fatalf("entry %d: %v %v", ent.Index, err, res[0].Code)
		}
	}
	b.StopTimer()
	ops := 2 * perEntry * len(entries) / 2
	b.ReportMetric(float64(ops)/b.Elapsed().Seconds(), "hold-ops/s")
}

// BenchmarkDecodeEntry decodes an entry of 1000 transfers.
func BenchmarkDecodeEntry(b *testing.B) {
	cmds := make([]Command, 1000)
	for i := range cmds {
		cmds[i] = Command{Op: OpTransfer, Key: fmt.Sprintf("9b1deb4d-3b7d-4bad-9bdd-2b0d7b3d%04d", i), Account: "0000000001", To: "0000000002", Amount: 12345}
	}
	raw, err := EncodeEntry(&Entry{Envelope: entry.Envelope{Index: 1, Epoch: 1}, Commands: cmds})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEntry(raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(cmds))/b.Elapsed().Seconds(), "commands/s")
}

// BenchmarkIndexChurn is the key window's pattern against a hashIndex and,
// for comparison, a Go map: in a full window of 500,000 keys, look up a new
// key (a miss), insert it and delete the oldest.
func BenchmarkIndexChurn(b *testing.B) {
	const window = 500_000
	seed := maphash.MakeSeed()
	hashesFor := func(n int) []uint32 {
		out := make([]uint32, window+n)
		for i := range out {
			out[i] = indexHash(seed, fmt.Sprintf("9b1deb4d-3b7d-4bad-9bdd-%012d", i))
		}
		return out
	}
	b.Run("hashIndex", func(b *testing.B) {
		hashes := hashesFor(b.N)
		x := newHashIndex(0)
		for i := range window {
			x.insert(hashes[i], uint32(i))
		}
		b.ResetTimer()
		for i := range b.N {
			x.find(hashes[window+i], func(uint32) bool { return false })
			x.insert(hashes[window+i], uint32(window+i))
			x.remove(hashes[i], uint32(i))
		}
	})
	b.Run("map", func(b *testing.B) {
		hashes := hashesFor(b.N)
		m := make(map[uint32]uint32)
		for i := range window {
			m[hashes[i]] = uint32(i)
		}
		b.ResetTimer()
		for i := range b.N {
			_ = m[hashes[window+i]]
			m[hashes[window+i]] = uint32(window + i)
			delete(m, hashes[i])
		}
	})
}
