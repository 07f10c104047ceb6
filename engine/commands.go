package engine

import (
	"fmt"

	"github.com/zkbank/zkbank/engine/internal/pack"
)

// EncodeCommands encodes cmds as a version 1 body holds them (an array of
// command maps); nodes also carry commands this way before they are in
// the log.
func EncodeCommands(cmds []Command) ([]byte, error) {
	if len(cmds) > EntryCommandsMax {
		return nil, fmt.Errorf("engine: encode commands: %d commands, limit %d", len(cmds), EntryCommandsMax)
	}
	w := pack.NewWriter(8 + 48*len(cmds))
	w.ArrayLen(len(cmds))
	for i := range cmds {
		encodeCommand(w, &cmds[i])
	}
	if w.Err != nil {
		return nil, fmt.Errorf("engine: encode commands: %w", w.Err)
	}
	return w.Buf.Bytes(), nil
}

// DecodeCommands decodes what EncodeCommands wrote, with the checks
// DecodeEntry makes on an entry's commands. It never panics.
func DecodeCommands(raw []byte) ([]Command, error) {
	if len(raw) > EntryBytesMax {
		return nil, fmt.Errorf("%w: commands of %d bytes, limit %d", ErrMalformedEntry, len(raw), EntryBytesMax)
	}
	if cmds, ok := scanCommands(raw); ok {
		return cmds, nil
	}
	return readCommands(raw)
}

// readCommands is DecodeCommands with the msgpack Decoder.
func readCommands(raw []byte) ([]Command, error) {
	r := pack.NewReader(raw)
	cmds, err := readCommandList(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedEntry, err)
	}
	if r.Left() != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after commands", ErrMalformedEntry, r.Left())
	}
	return cmds, nil
}

// EncodedBytesMax bounds from above the bytes cmds take in a body: what
// batchers count to keep an entry or a forwarded call under its limit.
func EncodedBytesMax(cmds []Command) int {
	n := 0
	for i := range cmds {
		c := &cmds[i]
		n += 48 + len(c.Key) + len(c.Account) + len(c.To) + len(c.Name) + len(c.Serial) + len(c.Principal)
		if c.Hold != 0 || c.ExpiresInMs != 0 || c.Approval != 0 {
			n += 48
		}
		if t := c.Token; t != nil {
			n += 64 + TokenHashLen
			for _, a := range t.Accounts {
				n += 8 + len(a)
			}
		}
	}
	return n
}
