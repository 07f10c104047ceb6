package engine

import (
	"bytes"
	"testing"

	"github.com/zkbank/zkbank/engine/entry"
)

func seedEntries(f *testing.F) {
	e, _ := New(DefaultConfig())
	ent := &Entry{Envelope: entry.Envelope{Index: 1, Epoch: 1, TimeMs: 5}, Commands: []Command{
		create("A", "Ada", 100), create("", "Bob", 0), transfer("A", "0000000001", 7),
		deposit("A", 1), withdraw("A", 2), rename("A", "Ann"), remove("0000000001"),
	}}
	raw, err := EncodeEntry(ent)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte{0x80})
	f.Add([]byte{})
	_ = e
}

// FuzzDecodeEntry: decoding never panics, and whatever decodes re-encodes
// to an entry that decodes to the same thing.
func FuzzDecodeEntry(f *testing.F) {
	seedEntries(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		ent, err := DecodeEntry(raw)
		if err != nil {
			return
		}
		again, err := EncodeEntry(ent)
		if err != nil {
			t.Fatalf("decoded entry does not encode: %v", err)
		}
		back, err := DecodeEntry(again)
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if back.Index != ent.Index || back.Epoch != ent.Epoch || len(back.Commands) != len(ent.Commands) {
			t.Fatal("round trip changed the entry")
		}
		for i := range ent.Commands {
			if back.Commands[i] != ent.Commands[i] {
				t.Fatalf("command %d changed: %+v -> %+v", i, ent.Commands[i], back.Commands[i])
			}
		}
	})
}

// FuzzApply: applying any decodable entry to a populated engine never
// panics, keeps every balance in bounds, keeps the totals true, and
// survives a snapshot round trip.
func FuzzApply(f *testing.F) {
	seedEntries(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		ent, err := DecodeEntry(raw)
		if err != nil {
			return
		}
		e, _ := New(DefaultConfig())
		ent.Index, ent.PrevHash, ent.Epoch = 1, Hash{}, 1
		if _, err := e.Apply(ent); err != nil {
			t.Fatalf("apply: %v", err)
		}
		var sum, count uint64
		for _, a := range e.List("", 1<<20) {
			if a.Balance > MaxAmount {
				t.Fatalf("balance %d out of bounds", a.Balance)
			}
			sum += a.Balance
			count++
		}
		if tot := e.Totals(); tot.Balance != sum || tot.Accounts != count {
			t.Fatalf("totals %+v, accounts sum to %d/%d", tot, sum, count)
		}
		var buf bytes.Buffer
		if err := e.WriteState(&buf); err != nil {
			t.Fatal(err)
		}
		if _, err := Restore(e.Config(), &buf); err != nil {
			t.Fatalf("restore: %v", err)
		}
	})
}
