package entry

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/zkbank/zkbank/engine/internal/pack"
)

// legacyEntry is an entry written before envelopes had versions (engine
// at commit ea5acd2): a create and a transfer at index 7. Its bytes and
// hash must never change: journals and ZooKeeper hold entries like it.
const (
	legacyEntry = "86a17601a5696e64657807a565706f636803a9707265765f68617368c4200908070000000000000000000000000000000000000000000000000000000000a774696d655f6d73cf0000019ad923e680a8636f6d6d616e64739285a26f7001a36b6579a26b31a76163636f756e74a431303031a46e616d65a3416461a6616d6f756e74cd01f485a26f7004a36b6579a26b32a76163636f756e74a431303031a2746fa431303032a6616d6f756e7419"
	legacyHash  = "eaba7ac534c88506bde22ccc046ea8a927d099c1ac6063d83ae694d336ba14b2"
	legacyBody  = "9285a26f7001a36b6579a26b31a76163636f756e74a431303031a46e616d65a3416461a6616d6f756e74cd01f485a26f7004a36b6579a26b32a76163636f756e74a431303031a2746fa431303032a6616d6f756e7419"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTodaysEntriesDecodeAndEncodeToTheSameBytes(t *testing.T) {
	raw := unhex(t, legacyEntry)
	e, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if e.Hash().String() != legacyHash {
		t.Fatalf("hash %s, want %s", e.Hash(), legacyHash)
	}
	if e.Index != 7 || e.Epoch != 3 || e.PrevHash != (Hash{9, 8, 7}) || e.TimeMs != 1764579600000 || e.BodyVersion != BodyV1 {
		t.Fatalf("decoded %+v", e)
	}
	if !bytes.Equal(e.Body, unhex(t, legacyBody)) {
		t.Fatalf("body %x, want the commands array", e.Body)
	}
	again := &Envelope{Index: 7, Epoch: 3, PrevHash: Hash{9, 8, 7}, TimeMs: 1764579600000, BodyVersion: BodyV1, Body: e.Body}
	out, err := Encode(again)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, raw) || again.Hash() != e.Hash() {
		t.Fatalf("re-encoded to %x", out)
	}
}

func TestLaterBodyVersionsRoundTripAsOpaqueBytes(t *testing.T) {
	body := []byte{0xc1, 0xff, 0x00, 'x'} // not even msgpack: the envelope does not look
	e := &Envelope{Index: 1 << 40, Epoch: 9, TimeMs: -5, BodyVersion: 2, Body: body}
	raw, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.Index != e.Index || got.Epoch != 9 || got.TimeMs != -5 || got.BodyVersion != 2 || !bytes.Equal(got.Body, body) || got.Hash() != e.Hash() {
		t.Fatalf("decoded %+v from %+v", got, e)
	}
}

func TestEncodeRefusesWhatCannotBeRead(t *testing.T) {
	for name, e := range map[string]*Envelope{
		"no body version":       {Index: 1, Body: []byte{0x90}},
		"v1 body not msgpack":   {Index: 1, BodyVersion: 1, Body: []byte{0x92, 0x01}},
		"v1 body of two values": {Index: 1, BodyVersion: 1, Body: []byte{0x90, 0x90}},
		"too large":             {Index: 1, BodyVersion: 2, Body: make([]byte, BytesMax)},
	} {
		if _, err := Encode(e); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

// TestDecodeRejectsMalformed: generic msgpack written by another tool is
// read the same way, and each kind of damage is an error, not a panic.
func TestDecodeRejectsMalformed(t *testing.T) {
	v1 := map[string]any{"v": 1, "index": 1, "epoch": 1, "prev_hash": make([]byte, 32), "time_ms": 0, "commands": []any{}}
	v2 := map[string]any{"v": 2, "index": 1, "epoch": 1, "prev_hash": make([]byte, 32), "time_ms": 0, "bv": 2, "body": []byte("x")}
	for name, good := range map[string]map[string]any{"v1": v1, "v2": v2} {
		if _, err := Decode(marshal(t, good)); err != nil {
			t.Fatalf("generic msgpack %s envelope refused: %v", name, err)
		}
	}
	cases := map[string]func(a, b map[string]any){
		"unknown layout":      func(a, b map[string]any) { a["v"], b["v"] = 3, 3 },
		"missing index":       func(a, b map[string]any) { delete(a, "index"); delete(b, "index") },
		"unknown field":       func(a, b map[string]any) { a["extra"], b["extra"] = 1, 1 },
		"short hash":          func(a, b map[string]any) { a["prev_hash"], b["prev_hash"] = []byte{1}, []byte{1} },
		"long hash":           func(a, b map[string]any) { a["prev_hash"], b["prev_hash"] = make([]byte, 33), make([]byte, 33) },
		"index as string":     func(a, b map[string]any) { a["index"], b["index"] = "1", "1" },
		"layouts mixed":       func(a, b map[string]any) { a["bv"], b["commands"] = 2, []any{} },
		"body version 1 in 2": func(a, b map[string]any) { a["v"], b["bv"] = 2, 1 },
		"body version huge":   func(a, b map[string]any) { a["v"], b["bv"] = 0, BodyVersionMax },
		"body not bytes":      func(a, b map[string]any) { a["v"], b["body"] = 0, 7 },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			a, b := copyMap(v1), copyMap(v2)
			mutate(a, b)
			for _, m := range []map[string]any{a, b} {
				if _, err := Decode(marshal(t, m)); !errors.Is(err, ErrMalformed) {
					t.Fatalf("%v: err = %v, want ErrMalformed", m, err)
				}
			}
		})
	}
	raw, err := Encode(&Envelope{Index: 3, Epoch: 1, BodyVersion: 2, Body: []byte("body")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(append(raw, 0)); err == nil {
		t.Fatal("accepted trailing bytes")
	}
	if _, err := Decode(make([]byte, BytesMax+1)); err == nil {
		t.Fatal("accepted an oversized entry")
	}
	for n := 0; n < len(raw); n++ {
		if _, err := Decode(raw[:n]); err == nil {
			t.Fatalf("accepted an entry truncated to %d bytes", n)
		}
	}
	// Layout 1's body runs to the end: what is cut or added there is the
	// body decoder's to refuse; the envelope before it is checked here.
	legacy := unhex(t, legacyEntry)
	head := len(legacy) - len(unhex(t, legacyBody))
	for n := 0; n < head; n++ {
		if _, err := Decode(legacy[:n]); err == nil {
			t.Fatalf("accepted an entry truncated to %d bytes, before its body", n)
		}
	}
	if e, err := Decode(append(legacy, 0)); err != nil || len(e.Body) != len(legacy)+1-head {
		t.Fatalf("a trailing byte after a layout 1 body is the body's: %v", err)
	}
}

func TestADeeplyNestedBodyIsNoThreat(t *testing.T) {
	deep := append(bytes.Repeat([]byte{0x91}, 500_000), 0xc0)
	e, err := Decode(append(unhex(t, strings.Split(legacyEntry, "a8636f6d6d616e6473")[0]+"a8636f6d6d616e6473"), deep...))
	if err != nil || len(e.Body) != len(deep) {
		t.Fatalf("err %v", err)
	}
}

// FuzzScanAgreesWithRead: whatever the fast path takes, the Decoder
// decodes to the same envelope, so the fast path never changes what a
// node applies; and whatever decodes encodes back to the same bytes when
// it was written canonically.
func FuzzScanAgreesWithRead(f *testing.F) {
	f.Add(unhex(f, legacyEntry))
	v2, _ := Encode(&Envelope{Index: 3, Epoch: 1, BodyVersion: 2, Body: []byte("body")})
	f.Add(v2)
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ok := scan(raw)
		if ok {
			want, err := read(raw)
			if err != nil {
				t.Fatalf("the scanner took an envelope the Decoder refuses: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("scanner %+v, Decoder %+v", got, want)
			}
		}
		e, err := Decode(raw)
		if err != nil {
			return
		}
		if n, ok := pack.Span(e.Body); e.BodyVersion == BodyV1 && (!ok || n != len(e.Body)) {
			return // a body the body decoder refuses; Encode refuses to write it
		}
		again := &Envelope{Index: e.Index, Epoch: e.Epoch, PrevHash: e.PrevHash, TimeMs: e.TimeMs, BodyVersion: e.BodyVersion, Body: e.Body}
		out, err := Encode(again)
		if err != nil {
			t.Fatalf("a decoded envelope does not encode: %v", err)
		}
		back, err := Decode(out)
		if err != nil || back.Index != e.Index || !bytes.Equal(back.Body, e.Body) || back.BodyVersion != e.BodyVersion {
			t.Fatalf("round trip changed the envelope: %v", err)
		}
	})
}

func copyMap(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
