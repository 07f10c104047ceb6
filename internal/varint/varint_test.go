package varint

import (
	"encoding/binary"
	"testing"
)

// TestReaderReadsWhatAppendWrote, and fails for good on the first read
// past the end: a cut record is never read as another.
func TestReaderReadsWhatAppendWrote(t *testing.T) {
	b := binary.AppendUvarint(nil, 300)
	b = binary.AppendVarint(b, -7)
	b = append(binary.AppendUvarint(b, 3), "abc"...)
	r := NewReader(b)
	if u, v, s := r.Uvarint(), r.Varint(), r.String(); u != 300 || v != -7 || s != "abc" || !r.Done() {
		t.Fatalf("read %d %d %q, done %v", u, v, s, r.Done())
	}
	for i := range b {
		r := NewReader(b[:i])
		r.Uvarint()
		r.Varint()
		_ = r.String()
		if r.OK() {
			t.Fatalf("a record cut at %d of %d was read", i, len(b))
		}
	}
	if r := NewReader(append(b, 0)); r.Uvarint() != 300 || r.Varint() != -7 || r.String() != "abc" || r.Done() {
		t.Fatal("a trailing byte went unseen")
	}
}
