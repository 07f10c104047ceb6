package engine

import (
	"bytes"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// EncodeCommands encodes cmds as an entry holds them (an array of command
// maps), for carrying commands between nodes before they are in the log.
func EncodeCommands(cmds []Command) ([]byte, error) {
	if len(cmds) > EntryCommandsMax {
		return nil, fmt.Errorf("engine: encode commands: %d commands, limit %d", len(cmds), EntryCommandsMax)
	}
	var buf bytes.Buffer
	buf.Grow(8 + 48*len(cmds))
	w := fieldWriter{enc: msgpack.NewEncoder(&buf)}
	w.arrayLen(len(cmds))
	for i := range cmds {
		encodeCommand(&w, &cmds[i])
	}
	if w.err != nil {
		return nil, fmt.Errorf("engine: encode commands: %w", w.err)
	}
	return buf.Bytes(), nil
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

// readCommands is DecodeCommands with the msgpack Decoder (see readEntry).
func readCommands(raw []byte) ([]Command, error) {
	rd := bytes.NewReader(raw)
	r := fieldReader{dec: msgpack.NewDecoder(rd)}
	cmds, err := r.commands()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedEntry, err)
	}
	if rd.Len() != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after commands", ErrMalformedEntry, rd.Len())
	}
	return cmds, nil
}
