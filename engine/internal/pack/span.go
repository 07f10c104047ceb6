package pack

import "encoding/binary"

// Span is the length of the one msgpack value at the start of b, of any
// form (nested maps and arrays, ext, floats included); ok is false when b
// does not start with a whole value. It counts the values still owed
// instead of recursing, so no nesting can exhaust the stack.
func Span(b []byte) (n int, ok bool) {
	off, owed := 0, 1
	for ; owed > 0; owed-- {
		if off >= len(b) {
			return 0, false
		}
		head, size, items := form(b[off:])
		if head == 0 {
			return 0, false
		}
		off += head
		if size > len(b)-off {
			return 0, false
		}
		off += size
		owed += items
		if owed > len(b)-off+1 { // every value owed takes a byte at least
			return 0, false
		}
	}
	return off, true
}

// form reads the header of the value at b: how many bytes the header
// takes, how many payload bytes follow it, and how many values are nested
// in it (2 per map pair). head is 0 for an invalid code or a short header.
func form(b []byte) (head, size, items int) {
	c := b[0]
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return 1, 0, 0 // fixints, nil, bools
	case c&0xf0 == 0x80:
		return 1, 0, 2 * int(c&0x0f)
	case c&0xf0 == 0x90:
		return 1, 0, int(c & 0x0f)
	case c&0xe0 == 0xa0:
		return 1, int(c & 0x1f), 0
	}
	if width := fixedWidth(c); width > 0 {
		return 1 + width, 0, 0
	}
	lenBytes, kind := lengthForm(c)
	if lenBytes == 0 || len(b) < 1+lenBytes {
		return 0, 0, 0
	}
	l := int(readUint(b[1 : 1+lenBytes]))
	switch kind {
	case 's':
		return 1 + lenBytes, l, 0
	case 'x':
		return 2 + lenBytes, l, 0 // the ext's type byte, then its data
	case 'a':
		return 1 + lenBytes, 0, l
	}
	return 1 + lenBytes, 0, 2 * l // map
}

// fixedWidth is the size of the payload after codes of a fixed size (0
// for the others), the fixext forms included (a type byte and 1..16
// bytes).
func fixedWidth(c byte) int {
	switch {
	case c >= 0xcc && c <= 0xcf: // uint8..64
		return 1 << (c - 0xcc)
	case c >= 0xd0 && c <= 0xd3: // int8..64
		return 1 << (c - 0xd0)
	case c >= 0xd4 && c <= 0xd8: // fixext 1..16
		return 1 + 1<<(c-0xd4)
	case c == 0xca: // float32
		return 4
	case c == 0xcb: // float64
		return 8
	}
	return 0
}

// lengthForm: codes followed by a length of lenBytes bytes, and what the
// length counts: payload bytes ('s' str and bin, 'x' ext), items ('a')
// or pairs ('m').
func lengthForm(c byte) (lenBytes int, kind byte) {
	switch c {
	case 0xd9, 0xc4:
		return 1, 's'
	case 0xda, 0xc5:
		return 2, 's'
	case 0xdb, 0xc6:
		return 4, 's'
	case 0xc7:
		return 1, 'x'
	case 0xc8:
		return 2, 'x'
	case 0xc9:
		return 4, 'x'
	case 0xdc:
		return 2, 'a'
	case 0xdd:
		return 4, 'a'
	case 0xde:
		return 2, 'm'
	case 0xdf:
		return 4, 'm'
	}
	return 0, 0
}

func readUint(b []byte) uint64 {
	switch len(b) {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(b))
	}
	return uint64(binary.BigEndian.Uint32(b))
}
