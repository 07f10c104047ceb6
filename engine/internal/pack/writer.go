package pack

import (
	"bytes"

	"github.com/vmihailenco/msgpack/v5"
)

// Writer encodes into a buffer and keeps the first error, so that
// encoders read as a plain list of fields.
type Writer struct {
	Buf bytes.Buffer
	enc *msgpack.Encoder
	Err error
}

// NewWriter returns a Writer with room for size bytes.
func NewWriter(size int) *Writer {
	w := &Writer{}
	w.Buf.Grow(size)
	w.enc = msgpack.NewEncoder(&w.Buf)
	return w
}

func (w *Writer) do(err error) {
	if w.Err == nil {
		w.Err = err
	}
}

// MapLen writes a map header.
func (w *Writer) MapLen(n int) { w.do(w.enc.EncodeMapLen(n)) }

// ArrayLen writes an array header.
func (w *Writer) ArrayLen(n int) { w.do(w.enc.EncodeArrayLen(n)) }

// Str writes a string.
func (w *Writer) Str(s string) { w.do(w.enc.EncodeString(s)) }

// Uint writes an unsigned integer in its shortest form.
func (w *Writer) Uint(v uint64) { w.do(w.enc.EncodeUint(v)) }

// Int writes a signed integer in its shortest form.
func (w *Writer) Int(v int64) { w.do(w.enc.EncodeInt(v)) }

// Bin writes bytes as bin.
func (w *Writer) Bin(b []byte) { w.do(w.enc.EncodeBytes(b)) }

// Raw appends bytes that are already msgpack.
func (w *Writer) Raw(b []byte) {
	if w.Err == nil {
		w.Buf.Write(b)
	}
}

// OptStr writes key and value when the value is not empty.
func (w *Writer) OptStr(k, v string) {
	if v != "" {
		w.Str(k)
		w.Str(v)
	}
}
