package engine

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/zkbank/zkbank/engine/entry"
)

func TestEntryRoundTripAndHash(t *testing.T) {
	ent := &Entry{Envelope: entry.Envelope{Index: 7, Epoch: 3, PrevHash: Hash{9}, TimeMs: -1}, Commands: []Command{create("", "Ada", 0), transfer("A", "B", 5)}}
	raw, err := EncodeEntry(ent)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := EncodeEntry(ent)
	if !bytes.Equal(raw, again) {
		t.Fatal("encoding is not deterministic")
	}
	dec, err := DecodeEntry(raw)
	if err != nil {
		t.Fatal(err)
	}
	if dec.Hash() != HashBytes(raw) || dec.Hash() != ent.Hash() {
		t.Fatal("hash is not the SHA-256 of the encoding")
	}
	if dec.Index != 7 || dec.Epoch != 3 || dec.PrevHash != (Hash{9}) || dec.TimeMs != -1 || len(dec.Commands) != 2 || dec.Commands[1] != ent.Commands[1] {
		t.Fatalf("decoded %+v", dec)
	}
}

// TestDecodeRejectsMalformed: generic msgpack written by another tool is
// read the same way, and each kind of damage is an error, not a panic.
func TestDecodeRejectsMalformed(t *testing.T) {
	good := map[string]any{"v": 1, "index": 1, "epoch": 1, "prev_hash": make([]byte, 32), "time_ms": 0,
		"commands": []any{map[string]any{"op": 2, "key": "k", "account": "A", "amount": 5}}}
	if _, err := DecodeEntry(marshal(t, good)); err != nil {
		t.Fatalf("generic msgpack entry refused: %v", err)
	}
	cases := map[string]func(m map[string]any){
		"unknown version": func(m map[string]any) { m["v"] = 2 },
		"missing index":   func(m map[string]any) { delete(m, "index") },
		"unknown field":   func(m map[string]any) { m["extra"] = 1 },
		"short hash":      func(m map[string]any) { m["prev_hash"] = []byte{1} },
		"long hash":       func(m map[string]any) { m["prev_hash"] = make([]byte, 33) },
		"index as string": func(m map[string]any) { m["index"] = "1" },
		"unknown op":      func(m map[string]any) { m["commands"] = []any{map[string]any{"op": 99, "key": "k"}} },
		"command no key":  func(m map[string]any) { m["commands"] = []any{map[string]any{"op": 2}} },
		"huge name": func(m map[string]any) {
			m["commands"] = []any{map[string]any{"op": 1, "key": "k", "name": strings.Repeat("x", 2000)}}
		},
		"command field": func(m map[string]any) { m["commands"] = []any{map[string]any{"op": 2, "key": "k", "x": 1}} },
		"commands nil":  func(m map[string]any) { m["commands"] = nil },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			m := map[string]any{}
			for k, v := range good {
				m[k] = v
			}
			mutate(m)
			if _, err := DecodeEntry(marshal(t, m)); !errors.Is(err, ErrMalformedEntry) {
				t.Fatalf("err = %v, want ErrMalformedEntry", err)
			}
		})
	}
	raw := marshal(t, good)
	if _, err := DecodeEntry(append(raw, 0)); err == nil {
		t.Fatal("accepted trailing bytes")
	}
	if _, err := DecodeEntry(make([]byte, EntryBytesMax+1)); err == nil {
		t.Fatal("accepted an oversized entry")
	}
	for n := 0; n < len(raw); n++ {
		if _, err := DecodeEntry(raw[:n]); err == nil {
			t.Fatalf("accepted an entry truncated to %d bytes", n)
		}
	}
}

func TestEncodeRefusesOversizedEntry(t *testing.T) {
	big := make([]Command, 2000)
	for i := range big {
		big[i] = Command{Op: OpCreateAccount, Key: strings.Repeat("k", 64), Name: strings.Repeat("n", 800)}
	}
	if _, err := EncodeEntry(&Entry{Envelope: entry.Envelope{Index: 1}, Commands: big}); err == nil {
		t.Fatal("encoded an entry over EntryBytesMax")
	}
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
