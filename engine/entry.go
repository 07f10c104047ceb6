package engine

import (
	"errors"
	"fmt"

	"github.com/zkbank/zkbank/engine/entry"
	"github.com/zkbank/zkbank/engine/internal/pack"
)

// Hash is a SHA-256 digest: of an encoded entry, or of a canonical state.
type Hash = entry.Hash

// ParseHash reads a hash rendered by Hash.String.
func ParseHash(s string) (Hash, error) { return entry.ParseHash(s) }

// HashBytes returns the hash of an encoded entry.
func HashBytes(raw []byte) Hash { return entry.Sum(raw) }

// ErrMalformedEntry marks bytes that are not a valid entry of a known
// version. A replica that reads one must stop: it cannot apply what it
// cannot understand.
var ErrMalformedEntry = errors.New("engine: malformed entry")

// ErrUnknownBodyVersion marks an entry whose body is of a version this
// binary cannot read: the cluster moved on, and this node needs a newer
// bankd.
var ErrUnknownBodyVersion = errors.New("engine: body version unknown to this binary")

// Entry is one batch in the operations log: the envelope (index, epoch,
// prev_hash, time, body version; package entry) and the commands its body
// holds. The engine only records TimeMs.
type Entry struct {
	entry.Envelope
	Commands []Command
}

// EncodeEntry encodes e's commands as a body of its BodyVersion (BodyV1
// when unset) and the envelope around them, and records the bytes and
// their hash in e. The encoding of a given Entry is always the same bytes.
func EncodeEntry(e *Entry) ([]byte, error) {
	if e.BodyVersion == 0 {
		e.BodyVersion = entry.BodyV1
	}
	body, err := EncodeBody(e.BodyVersion, e.Commands)
	if err != nil {
		return nil, fmt.Errorf("engine: encode entry %d: %w", e.Index, err)
	}
	e.Body = body
	raw, err := entry.Encode(&e.Envelope)
	if err != nil {
		return nil, fmt.Errorf("engine: encode entry %d: %w", e.Index, err)
	}
	return raw, nil
}

// DecodeEntry decodes an entry and keeps raw and its hash in it (raw must
// not be modified afterwards). Anything but a well-formed entry of a known
// version, within the size limits, is an error wrapping ErrMalformedEntry
// (or ErrUnknownBodyVersion); it never panics.
func DecodeEntry(raw []byte) (*Entry, error) {
	env, err := entry.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedEntry, err)
	}
	return Open(env)
}

// Open decodes the body of an envelope into the entry it carries.
func Open(env *entry.Envelope) (*Entry, error) {
	cmds, err := DecodeBody(env.BodyVersion, env.Body)
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", env.Index, err)
	}
	return &Entry{Envelope: *env, Commands: cmds}, nil
}

// Body versions this binary reads and writes: what each adds is in
// docs/format.md. The log switches to a newer one once, at one index, when
// every expected member reads it; it never goes back.
const (
	BodyV1 = entry.BodyV1     // commands: op, key, account, to, name, amount
	BodyV2 = 2                // and a principal per command ("by")
	BodyV3 = entry.BodySealed // the same commands, sealed: encrypted and signed (package seal)
	BodyV4 = 4                // and frozen accounts; the log's time never goes back in the state
	BodyV5 = 5                // and holds and four eyes: ops 12 to 17, fields hold, expires_in and approval
	BodyV6 = 6                // the same commands; keys are remembered by log time (Config.KeyRetainMs)
	// BodyVersionMax is the newest body version this binary reads.
	BodyVersionMax = BodyV6
)

// ErrNotInVersion: a command holds an op or a field that the body
// version cannot carry.
var ErrNotInVersion = errors.New("engine: not in this body version")

// ForBody is cmds as a body of the given version carries them. A version
// 1 body has no principal, so it is left out (of a copy; the caller's
// commands are not touched): until the log switches to version 2 the
// API's check before the log is the only one. An op or another field the
// version lacks (a revocation, a token) is ErrNotInVersion, never
// dropped. Whoever applies commands without decoding them (the leader)
// applies what ForBody returned, as the body holds it.
func ForBody(version uint32, cmds []Command) ([]Command, error) {
	if version < BodyV1 || version > BodyVersionMax {
		return nil, fmt.Errorf("%w: %d (this binary writes 1 to %d)", ErrUnknownBodyVersion, version, BodyVersionMax)
	}
	out := cmds
	for i := range cmds {
		if version == BodyV1 && cmds[i].Principal != "" {
			if &out[0] == &cmds[0] {
				out = append([]Command(nil), cmds...)
			}
			out[i].Principal = ""
		}
		if err := fitsVersion(version, &out[i]); err != nil {
			return nil, fmt.Errorf("%w: command %d: %w", ErrNotInVersion, i, err)
		}
	}
	return out, nil
}

// EncodeBody encodes cmds as a body of the given version (ForBody).
func EncodeBody(version uint32, cmds []Command) ([]byte, error) {
	cmds, err := ForBody(version, cmds)
	if err != nil {
		return nil, err
	}
	return EncodeCommands(cmds)
}

// DecodeBody decodes a body of the given version with the checks of that
// version; it never panics.
func DecodeBody(version uint32, body []byte) ([]Command, error) {
	if version < BodyV1 || version > BodyVersionMax {
		return nil, fmt.Errorf("%w: %d (this binary reads 1 to %d)", ErrUnknownBodyVersion, version, BodyVersionMax)
	}
	cmds, err := DecodeCommands(body)
	if err != nil {
		return nil, err
	}
	for i := range cmds {
		if err := fitsVersion(version, &cmds[i]); err != nil {
			return nil, fmt.Errorf("%w: command %d: %w", ErrMalformedEntry, i, err)
		}
	}
	return cmds, nil
}

// fitsVersion refuses what a body version does not carry: a principal or
// an op newer than version 1 in a version 1 body.
func fitsVersion(version uint32, c *Command) error {
	switch {
	case c.Op > opsIn(version):
		return fmt.Errorf("op %s is not in body version %d", c.Op, version)
	case version == BodyV1 && (c.Principal != "" || c.Serial != "" || c.Token != nil):
		return fmt.Errorf("a version 1 body carries no principal, serial or token")
	case version < BodyV5 && (c.Hold != 0 || c.ExpiresInMs != 0 || c.Approval != 0):
		return fmt.Errorf("a body before version 5 carries no hold, expiry or approval")
	}
	return nil
}

// encodeCommand writes a command as a map holding only the fields that are
// set, so that the encoding is canonical and compact.
func encodeCommand(w *pack.Writer, c *Command) {
	n := 2
	for _, set := range []bool{c.Account != "", c.To != "", c.Name != "", c.Amount != 0, c.Serial != "", c.Principal != "", c.Hold != 0, c.ExpiresInMs != 0, c.Approval != 0} {
		if set {
			n++
		}
	}
	t := c.Token
	if t != nil {
		for _, set := range []bool{t.Role != 0, len(t.Accounts) > 0, t.TTLMs != 0, t.Hash != ([TokenHashLen]byte{}), t.ID != 0} {
			if set {
				n++
			}
		}
	}
	w.MapLen(n)
	w.Str("op")
	w.Uint(uint64(c.Op))
	w.Str("key")
	w.Str(c.Key)
	w.OptStr("account", c.Account)
	w.OptStr("to", c.To)
	w.OptStr("name", c.Name)
	if c.Amount != 0 {
		w.Str("amount")
		w.Uint(c.Amount)
	}
	w.OptStr("serial", c.Serial)
	w.OptStr("by", c.Principal)
	if c.Hold != 0 {
		w.Str("hold")
		w.Uint(c.Hold)
	}
	if c.ExpiresInMs != 0 {
		w.Str("expires_in")
		w.Uint(c.ExpiresInMs)
	}
	if c.Approval != 0 {
		w.Str("approval")
		w.Uint(c.Approval)
	}
	if t != nil {
		encodeTokenSpec(w, t)
	}
}

// encodeTokenSpec writes the token ops' fields that are set.
func encodeTokenSpec(w *pack.Writer, t *TokenSpec) {
	if t.Role != 0 {
		w.Str("role")
		w.Uint(uint64(t.Role))
	}
	if len(t.Accounts) > 0 {
		w.Str("accounts")
		w.ArrayLen(len(t.Accounts))
		for _, a := range t.Accounts {
			w.Str(a)
		}
	}
	if t.TTLMs != 0 {
		w.Str("ttl")
		w.Uint(t.TTLMs)
	}
	if t.Hash != ([TokenHashLen]byte{}) {
		w.Str("hash")
		w.Bin(t.Hash[:])
	}
	if t.ID != 0 {
		w.Str("token")
		w.Uint(t.ID)
	}
}

// readCommandList decodes an array of commands with the msgpack Decoder:
// the reference for what a body is, and the judge of whatever the scanner
// does not take.
func readCommandList(r *pack.Reader) ([]Command, error) {
	n, err := r.ArrayLen()
	if err != nil {
		return nil, err
	}
	if n < 0 || n > EntryCommandsMax {
		return nil, fmt.Errorf("%d commands, limit %d", n, EntryCommandsMax)
	}
	cmds := make([]Command, n)
	for i := range cmds {
		if err := readCommand(r, &cmds[i]); err != nil {
			return nil, fmt.Errorf("command %d: %w", i, err)
		}
	}
	return cmds, nil
}

func readCommand(r *pack.Reader, c *Command) error {
	n, err := r.MapLen()
	if err != nil {
		return err
	}
	var seen uint32
	for i := 0; i < n; i++ {
		k, err := r.Key()
		if err != nil {
			return err
		}
		bit, err := readCommandField(r, k, c)
		if err != nil {
			return fmt.Errorf("field %q: %w", k, err)
		}
		if seen&bit != 0 {
			return fmt.Errorf("field %q repeated", k)
		}
		seen |= bit
	}
	if seen&3 != 3 {
		return errors.New("op and key are required")
	}
	return nil
}

func readCommandField(r *pack.Reader, k string, c *Command) (uint32, error) {
	var err error
	switch k {
	case "op":
		var v uint64
		v, err = r.Uint()
		c.Op = Op(v)
		if err == nil && (v >= opEnd || !c.Op.Valid()) {
			err = fmt.Errorf("unknown op %d", v)
		}
		return 1, err
	case "key":
		c.Key, err = r.Str(fieldBytesMax)
		return 2, err
	case "account":
		c.Account, err = r.Str(fieldBytesMax)
		return 4, err
	case "to":
		c.To, err = r.Str(fieldBytesMax)
		return 8, err
	case "name":
		c.Name, err = r.Str(fieldBytesMax)
		return 16, err
	case "amount":
		c.Amount, err = r.Uint()
		return 32, err
	case "by":
		c.Principal, err = r.Str(PrincipalLenMax)
		return 64, err
	case "serial":
		c.Serial, err = r.Str(fieldBytesMax)
		return 128, err
	case "hold":
		c.Hold, err = r.Uint()
		return 8192, err
	case "expires_in":
		c.ExpiresInMs, err = r.Uint()
		return 16384, err
	case "approval":
		c.Approval, err = r.Uint()
		return 32768, err
	}
	return readTokenField(r, k, c)
}

// readTokenField reads the token ops' fields; any other key is unknown.
func readTokenField(r *pack.Reader, k string, c *Command) (uint32, error) {
	if c.Token == nil {
		c.Token = &TokenSpec{}
	}
	t := c.Token
	var err error
	switch k {
	case "role":
		var v uint64
		v, err = r.Uint()
		t.Role = Role(v)
		if err == nil && v > 255 {
			err = fmt.Errorf("role %d", v)
		}
		return 256, err
	case "accounts":
		var n int
		if n, err = r.ArrayLen(); err == nil && (n < 0 || n > TokenAccountsMax) {
			err = fmt.Errorf("%d accounts, limit %d", n, TokenAccountsMax)
		}
		for i := 0; err == nil && i < n; i++ {
			var a string
			a, err = r.Str(fieldBytesMax)
			t.Accounts = append(t.Accounts, a)
		}
		return 512, err
	case "ttl":
		t.TTLMs, err = r.Uint()
		return 1024, err
	case "hash":
		return 2048, r.Fixed(t.Hash[:])
	case "token":
		t.ID, err = r.Uint()
		return 4096, err
	}
	return 0, errors.New("unknown field")
}
