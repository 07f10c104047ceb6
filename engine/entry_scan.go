package engine

import "github.com/zkbank/zkbank/engine/internal/pack"

// The fast path of DecodeCommands: pack.Scanner over exactly the forms
// this package's encoder writes. Followers decode every entry they apply,
// and the msgpack Decoder, which reads a byte at a time through an
// interface and allocates each map key, was a sixth of a follower's CPU
// under batches. Anything the scanner does not take, well-formed or not,
// goes to the Decoder (readCommandList), which alone decides what is an
// error and says why; a fuzz test checks that whatever the scanner
// accepts, the Decoder decodes to the same thing.

// scanCommands is the fast path of DecodeCommands; ok is false when it
// cannot vouch for raw.
func scanCommands(raw []byte) ([]Command, bool) {
	s := pack.Scanner{B: raw}
	n := s.ArrayLen()
	if s.Bad || n > EntryCommandsMax || n > s.Left() { // each command takes a byte at least
		return nil, false
	}
	cmds := make([]Command, n)
	for i := range cmds {
		if !scanCommand(&s, &cmds[i]) {
			return nil, false
		}
	}
	return cmds, s.Done()
}

// scanCommand reads one command's map; false when it lacks op or key,
// repeats a field, or holds anything the scanner does not take.
func scanCommand(s *pack.Scanner, c *Command) bool {
	var seen uint32
	for n := s.MapLen(); n > 0 && !s.Bad; n-- {
		bit := scanCommandField(s, c)
		if seen&bit != 0 {
			return false
		}
		seen |= bit
	}
	return !s.Bad && seen&3 == 3
}

func scanCommandField(s *pack.Scanner, c *Command) uint32 {
	switch string(s.Bytes(16)) {
	case "op":
		v := s.Uint()
		c.Op = Op(v)
		if v >= opEnd || !c.Op.Valid() {
			s.Bad = true
		}
		return 1
	case "key":
		c.Key = s.Str(fieldBytesMax)
		return 2
	case "account":
		c.Account = s.Str(fieldBytesMax)
		return 4
	case "to":
		c.To = s.Str(fieldBytesMax)
		return 8
	case "name":
		c.Name = s.Str(fieldBytesMax)
		return 16
	case "amount":
		c.Amount = s.Uint()
		return 32
	case "by":
		c.Principal = s.Str(PrincipalLenMax)
		return 64
	case "serial":
		c.Serial = s.Str(fieldBytesMax)
		return 128
	case "hold":
		c.Hold = s.Uint()
		return 8192
	case "expires_in":
		c.ExpiresInMs = s.Uint()
		return 16384
	case "approval":
		c.Approval = s.Uint()
		return 32768
	}
	s.Bad = true
	return 0
}
