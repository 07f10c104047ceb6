package wire

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/zkbank/zkbank/engine"
)

// Request bodies and answers are most of what a node does per request:
// with batches of 1,000, encoding/json's reflection was about a fifth of
// the receiving node's CPU, and for single transfers decoding the body
// cost 7 µs (docs/benchmarks.md). DecodeBatch, DecodePlain and the
// AppendJSON methods handle the plain shapes by hand and give exactly
// what encoding/json gives; anything unusual is left to encoding/json.

// DecodeBatch decodes a batch body that is plainly what encoding/json
// would accept into a Batch with no unknown field: one object holding
// "commands", commands with lower-case field names seen once each, strings
// without escapes, amounts of plain digits, nothing after the object. For
// anything else it reports false, and the caller decodes the body with
// encoding/json, whose error it then reports: the result is always what
// encoding/json would give.
func DecodeBatch(body []byte) (Batch, bool) {
	s := scanner{b: body}
	var out Batch
	if !s.take('{') || string(s.key()) != "commands" || !s.take('[') {
		return Batch{}, false
	}
	out.Commands = make([]Command, 0, bytes.Count(body, []byte{'{'})) // one per command, unless names hold braces
	if !s.take(']') {
		for {
			c, _, ok := s.command()
			if !ok {
				return Batch{}, false
			}
			out.Commands = append(out.Commands, c)
			if s.take(']') {
				break
			}
			if !s.take(',') {
				return Batch{}, false
			}
		}
	}
	if !s.take('}') {
		return Batch{}, false
	}
	s.space()
	return out, s.i == len(s.b)
}

// scanner reads the plain JSON DecodeBatch accepts; any method failing
// leaves the caller to give up.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// take consumes c after any space.
func (s *scanner) take(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// key reads an object key and its colon; nil when there is none.
func (s *scanner) key() []byte {
	k, ok := s.raw()
	if !ok || !s.take(':') {
		return nil
	}
	return k
}

// str reads a string with no escapes and valid UTF-8, as encoding/json
// would give it.
func (s *scanner) str() (string, bool) {
	v, ok := s.raw()
	return string(v), ok
}

// op reads an op's name, without allocating one for the names the engine
// knows.
func (s *scanner) op() (string, bool) {
	v, ok := s.raw()
	if !ok {
		return "", false
	}
	if op, known := engine.ParseOp(string(v)); known {
		return op.String(), true
	}
	return string(v), true
}

// raw is str's bytes, in the body.
func (s *scanner) raw() ([]byte, bool) {
	if !s.take('"') {
		return nil, false
	}
	start, ascii := s.i, true
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			if !ascii && !utf8.Valid(v) {
				return nil, false // encoding/json replaces bad bytes
			}
			return v, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// uint reads a non-negative integer that fits in 64 bits, written as
// JSON writes one.
func (s *scanner) uint() (uint64, bool) {
	s.space()
	start := s.i
	var v uint64
	for ; s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9'; s.i++ {
		d := uint64(s.b[s.i] - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	n := s.i - start
	if n == 0 || n > 1 && s.b[start] == '0' {
		return 0, false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return 0, false // a float: encoding/json's type error
		}
	}
	return v, true
}

// Fields of a batch command, one bit each, to refuse repeats.
const (
	fieldOp = 1 << iota
	fieldKey
	fieldAccount
	fieldFrom
	fieldTo
	fieldName
	fieldAmount
	fieldBalance
)

// command reads one command object and says which fields it had.
func (s *scanner) command() (Command, int, bool) {
	var c Command
	if !s.take('{') {
		return c, 0, false
	}
	if s.take('}') {
		return c, 0, true
	}
	var seen int
	for {
		bit, ok := s.field(&c)
		if !ok || seen&bit != 0 {
			return c, 0, false
		}
		seen |= bit
		if s.take('}') {
			return c, seen, true
		}
		if !s.take(',') {
			return c, 0, false
		}
	}
}

// DecodePlain is DecodeBatch for any write body: v is a *Batch,
// *Transfer, *Amount, *CreateAccount or *Rename. It sets the fields the
// body has, as encoding/json does, and reports false, leaving v alone,
// for anything else.
func DecodePlain(body []byte, v any) bool {
	var allowed int
	switch v := v.(type) {
	case *Batch:
		b, ok := DecodeBatch(body)
		if ok {
			*v = b
		}
		return ok
	case *Transfer:
		allowed = fieldFrom | fieldTo | fieldAmount
	case *Amount:
		allowed = fieldAmount
	case *CreateAccount:
		allowed = fieldAccount | fieldName | fieldBalance
	case *Rename:
		allowed = fieldName
	default:
		return false
	}
	s := scanner{b: body}
	c, seen, ok := s.command()
	s.space()
	if !ok || seen&^allowed != 0 || s.i != len(s.b) {
		return false
	}
	switch v := v.(type) {
	case *Transfer:
		setIf(seen, fieldFrom, &v.From, c.From)
		setIf(seen, fieldTo, &v.To, c.To)
		setIf(seen, fieldAmount, &v.Amount, c.Amount)
	case *Amount:
		setIf(seen, fieldAmount, &v.Amount, c.Amount)
	case *CreateAccount:
		setIf(seen, fieldAccount, &v.Account, c.Account)
		setIf(seen, fieldName, &v.Name, c.Name)
		setIf(seen, fieldBalance, &v.Balance, c.Balance)
	case *Rename:
		setIf(seen, fieldName, &v.Name, c.Name)
	}
	return true
}

// setIf sets *dst to v when the body had the field: encoding/json leaves
// the others as they were.
func setIf[T any](seen, field int, dst *T, v T) {
	if seen&field != 0 {
		*dst = v
	}
}

// field reads one "name": value pair into c and says which it was.
func (s *scanner) field(c *Command) (int, bool) {
	var dst *string
	var bit int
	switch string(s.key()) {
	case "op":
		v, ok := s.op()
		c.Op = v
		return fieldOp, ok
	case "key":
		dst, bit = &c.Key, fieldKey
	case "account":
		dst, bit = &c.Account, fieldAccount
	case "from":
		dst, bit = &c.From, fieldFrom
	case "to":
		dst, bit = &c.To, fieldTo
	case "name":
		dst, bit = &c.Name, fieldName
	case "amount":
		v, ok := s.uint()
		c.Amount = v
		return fieldAmount, ok
	case "balance":
		v, ok := s.uint()
		c.Balance = v
		return fieldBalance, ok
	default:
		return 0, false
	}
	v, ok := s.str()
	*dst = v
	return bit, ok
}

// AppendJSON appends r as encoding/json's Encoder writes it (HTML-safe
// escaping, a newline at the end).
func (r BatchResult) AppendJSON(b []byte) []byte {
	b = append(b, `{"index":`...)
	b = strconv.AppendUint(b, r.Index, 10)
	b = append(b, `,"results":`...)
	if r.Results == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, res := range r.Results {
			if i > 0 {
				b = append(b, ',')
			}
			b = res.appendJSON(b)
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...)
}

func (r Result) appendJSON(b []byte) []byte {
	b = append(b, `{"code":`...)
	b = appendString(b, r.Code)
	if r.Replayed {
		b = append(b, `,"replayed":true`...)
	}
	if len(r.Accounts) > 0 {
		b = append(b, `,"accounts":[`...)
		for i, a := range r.Accounts {
			if i > 0 {
				b = append(b, ',')
			}
			b = a.appendJSON(b)
		}
		b = append(b, ']')
	}
	if r.Hold != nil { // hold ops are few: encoding/json writes them
		h, _ := json.Marshal(r.Hold) // a Hold always marshals
		b = append(append(b, `,"hold":`...), h...)
	}
	if r.Approval != nil { // as are approvals
		a, _ := json.Marshal(r.Approval)
		b = append(append(b, `,"approval":`...), a...)
	}
	return append(b, '}')
}

// AppendJSON appends a as encoding/json's Encoder writes it.
func (a Account) AppendJSON(b []byte) []byte { return append(a.appendJSON(b), '\n') }

// AppendJSON appends r as encoding/json's Encoder writes it.
func (r TransferResult) AppendJSON(b []byte) []byte {
	b = append(b, `{"from":`...)
	b = r.From.appendJSON(b)
	b = append(b, `,"to":`...)
	b = r.To.appendJSON(b)
	return append(b, "}\n"...)
}

func (a Account) appendJSON(b []byte) []byte {
	b = append(b, `{"account":`...)
	b = appendString(b, a.Account)
	b = append(b, `,"name":`...)
	b = appendString(b, a.Name)
	b = append(b, `,"balance":`...)
	b = strconv.AppendUint(b, a.Balance, 10)
	b = append(b, `,"created_index":`...)
	b = strconv.AppendUint(b, a.CreatedIndex, 10)
	b = append(b, `,"updated_index":`...)
	b = strconv.AppendUint(b, a.UpdatedIndex, 10)
	if a.Frozen {
		b = append(b, `,"frozen":true`...)
	}
	b = append(b, `,"held":`...)
	b = strconv.AppendUint(b, a.Held, 10)
	b = append(b, `,"available":`...)
	b = strconv.AppendUint(b, a.Available, 10)
	return append(b, '}')
}

// appendString writes plain printable ASCII as is and leaves every other
// string to encoding/json, for its exact escaping.
func appendString(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c < 0x20, c >= utf8.RuneSelf, c == '"', c == '\\', c == '<', c == '>', c == '&':
			q, _ := json.Marshal(v) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, v...)
	return append(b, '"')
}
