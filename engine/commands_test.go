package engine

import (
	"errors"
	"testing"
)

func TestCommandsRoundTrip(t *testing.T) {
	cmds := []Command{create("", "Ada", 0), transfer("A", "B", 5), rename("A", "Grace"), remove("B")}
	raw, err := EncodeCommands(cmds)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeCommands(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(cmds) {
		t.Fatalf("decoded %d commands, want %d", len(back), len(cmds))
	}
	for i := range cmds {
		if back[i] != cmds[i] {
			t.Fatalf("command %d: %+v, want %+v", i, back[i], cmds[i])
		}
	}
}

func TestDecodeCommandsRejectsDamage(t *testing.T) {
	raw, err := EncodeCommands([]Command{transfer("A", "B", 5), deposit("A", 1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeCommands(append(raw, 0)); !errors.Is(err, ErrMalformedEntry) {
		t.Fatalf("trailing byte: err = %v", err)
	}
	for n := 0; n < len(raw); n++ {
		if _, err := DecodeCommands(raw[:n]); !errors.Is(err, ErrMalformedEntry) {
			t.Fatalf("truncated to %d bytes: err = %v", n, err)
		}
	}
	bad := marshal(t, []any{map[string]any{"op": 99, "key": "k"}})
	if _, err := DecodeCommands(bad); !errors.Is(err, ErrMalformedEntry) {
		t.Fatalf("unknown op: err = %v", err)
	}
}
