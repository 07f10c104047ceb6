package pack

import (
	"bytes"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// FuzzSpanAgreesWithDecoder: Span finds a whole value exactly where the
// msgpack Decoder skips one, for every form.
func FuzzSpanAgreesWithDecoder(f *testing.F) {
	for _, v := range []any{nil, true, 1, -1, 1 << 40, -1 << 40, 1.5, float32(2), "s", []byte{1, 2},
		[]any{1, "a", map[string]any{"k": []any{}}}, map[string]any{"a": 1, "b": []byte{3}},
		msgpack.RawMessage{0xd4, 0x01, 0x02}, msgpack.RawMessage{0xc7, 0x02, 0x05, 0x01, 0x02}} {
		b, err := msgpack.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 4096 {
			return // the Decoder recurses; keep it shallow
		}
		n, ok := Span(b)
		rd := bytes.NewReader(b)
		err := msgpack.NewDecoder(rd).Skip()
		if ok != (err == nil) {
			t.Fatalf("Span ok=%v n=%d, Decoder.Skip err=%v", ok, n, err)
		}
		if ok && n != len(b)-rd.Len() {
			t.Fatalf("Span %d, Decoder skipped %d", n, len(b)-rd.Len())
		}
	})
}

func TestSpanOfEveryPrefixOfAValueIsNotWhole(t *testing.T) {
	b, _ := msgpack.Marshal([]any{map[string]any{"op": 1, "key": "k", "amount": uint64(1 << 40)}, "x", []byte{1}})
	if n, ok := Span(b); !ok || n != len(b) {
		t.Fatalf("Span = %d, %v; want %d", n, ok, len(b))
	}
	for i := range b {
		if _, ok := Span(b[:i]); ok {
			t.Fatalf("prefix of %d bytes taken as whole", i)
		}
	}
}

func TestSpanNeverRecurses(t *testing.T) {
	deep := append(bytes.Repeat([]byte{0x91}, 1_000_000), 0xc0)
	if n, ok := Span(deep); !ok || n != len(deep) {
		t.Fatalf("Span = %d, %v", n, ok)
	}
	huge := []byte{0xdf, 0xff, 0xff, 0xff, 0xff} // a map of 2^32-1 pairs in 5 bytes
	if _, ok := Span(huge); ok {
		t.Fatal("a map longer than its bytes taken as whole")
	}
}
