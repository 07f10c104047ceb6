package pack

// Scanner reads msgpack from B; any form it does not take, or bytes that
// run out, set Bad, after which every read returns zero values.
type Scanner struct {
	B   []byte
	Off int
	Bad bool
}

// Done reports whether every byte was read and nothing was amiss.
func (s *Scanner) Done() bool { return !s.Bad && s.Off == len(s.B) }

// Left is how many bytes are not read yet.
func (s *Scanner) Left() int { return len(s.B) - s.Off }

func (s *Scanner) next() byte {
	if s.Off >= len(s.B) {
		s.Bad = true
		return 0
	}
	c := s.B[s.Off]
	s.Off++
	return c
}

// Take returns the next n bytes without copying.
func (s *Scanner) Take(n int) []byte {
	if s.Bad || n < 0 || n > len(s.B)-s.Off {
		s.Bad = true
		return nil
	}
	p := s.B[s.Off : s.Off+n]
	s.Off += n
	return p
}

// bigEndian reads an n-byte unsigned integer.
func (s *Scanner) bigEndian(n int) uint64 {
	var v uint64
	for _, c := range s.Take(n) {
		v = v<<8 | uint64(c)
	}
	return v
}

// sized reads the length that follows a 16- or 32-bit form's code.
func (s *Scanner) sized(c, code16, code32 byte) int {
	switch c {
	case code16:
		return int(s.bigEndian(2))
	case code32:
		return int(s.bigEndian(4))
	}
	s.Bad = true
	return 0
}

// MapLen reads a map header.
func (s *Scanner) MapLen() int {
	c := s.next()
	if c&0xf0 == 0x80 {
		return int(c & 0x0f)
	}
	return s.sized(c, 0xde, 0xdf)
}

// ArrayLen reads an array header.
func (s *Scanner) ArrayLen() int {
	c := s.next()
	if c&0xf0 == 0x90 {
		return int(c & 0x0f)
	}
	return s.sized(c, 0xdc, 0xdd)
}

// Bytes reads a str or bin of at most limit bytes, without copying.
func (s *Scanner) Bytes(limit int) []byte {
	c := s.next()
	var n int
	switch {
	case c&0xe0 == 0xa0:
		n = int(c & 0x1f)
	case c == 0xd9 || c == 0xc4:
		n = int(s.bigEndian(1))
	case c == 0xda || c == 0xc5:
		n = int(s.bigEndian(2))
	case c == 0xdb || c == 0xc6:
		n = int(s.bigEndian(4))
	default:
		s.Bad = true
	}
	if n > limit {
		s.Bad = true
	}
	return s.Take(n)
}

// Str reads a str or bin of at most limit bytes as a string.
func (s *Scanner) Str(limit int) string { return string(s.Bytes(limit)) }

// Uint reads a positive fixint or a uint8/16/32/64.
func (s *Scanner) Uint() uint64 {
	c := s.next()
	switch {
	case c <= 0x7f:
		return uint64(c)
	case c >= 0xcc && c <= 0xcf:
		return s.bigEndian(1 << (c - 0xcc))
	}
	s.Bad = true
	return 0
}

// Value reads one value of any form and returns its bytes, without
// copying (see Span).
func (s *Scanner) Value() []byte {
	n, ok := Span(s.B[min(s.Off, len(s.B)):])
	if !ok {
		s.Bad = true
		return nil
	}
	return s.Take(n)
}
