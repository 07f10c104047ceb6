package engine

// The fast path of DecodeEntry and DecodeCommands: a scanner over the
// bytes for exactly the msgpack forms this package's encoder writes
// (fix/16/32-bit maps and arrays, str8/16/32, unsigned integers). Followers
// decode every entry they apply, and the msgpack Decoder, which reads a
// byte at a time through an interface and allocates each map key, was a
// sixth of a follower's CPU under batches. Anything the scanner does not
// take, well-formed or not, goes to the Decoder (fieldReader), which alone
// decides what is an error and says why; a fuzz test checks that whatever
// the scanner accepts, the Decoder decodes to the same thing.

// scanner reads msgpack from b; any form it does not handle, or bytes that
// run out, set bad, after which every read returns zero values.
type scanner struct {
	b   []byte
	off int
	bad bool
}

// scanEntry is the fast path of DecodeEntry: ok is false when it cannot
// vouch for raw, and the caller then decodes with fieldReader.
func scanEntry(raw []byte) (e *Entry, ok bool) {
	s := scanner{b: raw}
	e = &Entry{}
	var seen uint8
	for n := s.mapLen(); n > 0 && !s.bad; n-- {
		bit := s.envelopeField(e)
		if seen&bit != 0 {
			return nil, false
		}
		seen |= bit
	}
	return e, s.done() && seen == 0x3f
}

// scanCommands is the fast path of DecodeCommands.
func scanCommands(raw []byte) ([]Command, bool) {
	s := scanner{b: raw}
	cmds := s.commands()
	return cmds, s.done()
}

// done reports whether every byte was read and nothing was amiss.
func (s *scanner) done() bool { return !s.bad && s.off == len(s.b) }

// envelopeField reads one field of the entry's map and returns its bit in
// the set of fields seen (0 and bad for an unknown field).
func (s *scanner) envelopeField(e *Entry) uint8 {
	switch string(s.bytes()) {
	case "v":
		if s.uint() != EntryVersion {
			s.bad = true
		}
		return 1
	case "index":
		e.Index = s.uint()
		return 2
	case "epoch":
		e.Epoch = s.uint()
		return 4
	case "prev_hash":
		if b := s.bytes(); len(b) == len(e.PrevHash) {
			copy(e.PrevHash[:], b)
		} else {
			s.bad = true
		}
		return 8
	case "time_ms":
		e.TimeMs = int64(s.uint()) // the Decoder wraps the same way
		return 16
	case "commands":
		e.Commands = s.commands()
		return 32
	}
	s.bad = true
	return 0
}

func (s *scanner) commands() []Command {
	n := s.arrayLen()
	if s.bad || n > EntryCommandsMax || n > len(s.b)-s.off { // each command takes a byte at least
		s.bad = true
		return nil
	}
	cmds := make([]Command, n)
	for i := range cmds {
		if !s.command(&cmds[i]) {
			s.bad = true
			return nil
		}
	}
	return cmds
}

// command reads one command's map; false when it lacks op or key, repeats
// a field, or holds anything the scanner does not take.
func (s *scanner) command(c *Command) bool {
	var seen uint8
	for n := s.mapLen(); n > 0 && !s.bad; n-- {
		bit := s.commandField(c)
		if seen&bit != 0 {
			return false
		}
		seen |= bit
	}
	return !s.bad && seen&3 == 3
}

func (s *scanner) commandField(c *Command) uint8 {
	switch string(s.bytes()) {
	case "op":
		v := s.uint()
		c.Op = Op(v)
		if v >= opEnd || !c.Op.Valid() {
			s.bad = true
		}
		return 1
	case "key":
		c.Key = s.str()
		return 2
	case "account":
		c.Account = s.str()
		return 4
	case "to":
		c.To = s.str()
		return 8
	case "name":
		c.Name = s.str()
		return 16
	case "amount":
		c.Amount = s.uint()
		return 32
	}
	s.bad = true
	return 0
}

func (s *scanner) next() byte {
	if s.off >= len(s.b) {
		s.bad = true
		return 0
	}
	c := s.b[s.off]
	s.off++
	return c
}

func (s *scanner) take(n int) []byte {
	if s.bad || n > len(s.b)-s.off {
		s.bad = true
		return nil
	}
	p := s.b[s.off : s.off+n]
	s.off += n
	return p
}

// bigEndian reads an n-byte unsigned integer.
func (s *scanner) bigEndian(n int) uint64 {
	var v uint64
	for _, c := range s.take(n) {
		v = v<<8 | uint64(c)
	}
	return v
}

// sized reads the length that follows a 16- or 32-bit form's code.
func (s *scanner) sized(c, code16, code32 byte) int {
	switch c {
	case code16:
		return int(s.bigEndian(2))
	case code32:
		return int(s.bigEndian(4))
	}
	s.bad = true
	return 0
}

func (s *scanner) mapLen() int {
	c := s.next()
	if c&0xf0 == 0x80 {
		return int(c & 0x0f)
	}
	return s.sized(c, 0xde, 0xdf)
}

func (s *scanner) arrayLen() int {
	c := s.next()
	if c&0xf0 == 0x90 {
		return int(c & 0x0f)
	}
	return s.sized(c, 0xdc, 0xdd)
}

// bytes reads a str or bin of at most fieldBytesMax bytes, without copying.
func (s *scanner) bytes() []byte {
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
		s.bad = true
	}
	if n > fieldBytesMax {
		s.bad = true
	}
	return s.take(n)
}

func (s *scanner) str() string { return string(s.bytes()) }

// uint reads a positive fixint or a uint8/16/32/64.
func (s *scanner) uint() uint64 {
	c := s.next()
	switch {
	case c <= 0x7f:
		return uint64(c)
	case c >= 0xcc && c <= 0xcf:
		return s.bigEndian(1 << (c - 0xcc))
	}
	s.bad = true
	return 0
}
