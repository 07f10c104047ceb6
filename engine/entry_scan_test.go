package engine

import (
	"reflect"
	"testing"

	"pgregory.net/rapid"

	"github.com/zkbank/zkbank/engine/entry"
)

// FuzzScannerAgreesWithDecoder: whatever the scanner takes as a list of
// commands (a version 1 body), the msgpack Decoder decodes to the same
// thing, so the fast path never changes what a node applies. The
// envelope's own fuzz test is in package entry.
func FuzzScannerAgreesWithDecoder(f *testing.F) {
	seedEntries(f)
	cmds, err := EncodeCommands([]Command{create("A", "Ada", 100), transfer("B", "0000000001", 7),
		createHold("A", "B", 5, 60_000), captureHold(1, 2), voidHold(1)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(cmds)
	f.Fuzz(func(t *testing.T, raw []byte) {
		if env, err := entry.Decode(raw); err == nil {
			raw = env.Body
		}
		if got, ok := scanCommands(raw); ok {
			want, err := readCommands(raw)
			if err != nil {
				t.Fatalf("the scanner took commands the Decoder refuses: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("scanner %+v, Decoder %+v", got, want)
			}
		}
	})
}

// TestScannerTakesWhatTheEncoderWrites: every entry and command list the
// encoder writes (a clock at or after 1970) takes the fast path, whatever
// the lengths of its strings and lists; otherwise the fast path would
// quietly be dead.
func TestScannerTakesWhatTheEncoderWrites(t *testing.T) {
	genText := rapid.OneOf(rapid.String(), rapid.StringN(0, fieldBytesMax, fieldBytesMax), rapid.StringMatching(`[0-9]{10}`))
	genCmd := rapid.Custom(func(t *rapid.T) Command {
		return Command{
			Op:          Op(rapid.IntRange(int(OpCreateAccount), int(opEnd-1)).Draw(t, "op")),
			Key:         genText.Draw(t, "key"),
			Account:     genText.Draw(t, "account"),
			To:          genText.Draw(t, "to"),
			Name:        genText.Draw(t, "name"),
			Amount:      rapid.Uint64().Draw(t, "amount"),
			Principal:   rapid.StringN(0, PrincipalLenMax, PrincipalLenMax).Draw(t, "principal"),
			Hold:        rapid.Uint64().Draw(t, "hold"),
			ExpiresInMs: rapid.Uint64().Draw(t, "expires_in"),
		}
	})
	rapid.Check(t, func(t *rapid.T) {
		cmds := rapid.SliceOfN(genCmd, 0, 40).Draw(t, "commands")
		e := &Entry{Envelope: entry.Envelope{Index: rapid.Uint64().Draw(t, "index"), Epoch: rapid.Uint64().Draw(t, "epoch"), TimeMs: rapid.Int64Min(0).Draw(t, "time"),
			BodyVersion: BodyV5, KeyID: 1, Sig: []byte{1}}, Commands: cmds}
		copy(e.PrevHash[:], rapid.SliceOfN(rapid.Byte(), len(e.PrevHash), len(e.PrevHash)).Draw(t, "prev"))
		raw, err := EncodeEntry(e)
		if err != nil {
			t.Skip("too large for an entry")
		}
		env, err := entry.Decode(raw)
		if err != nil {
			t.Fatalf("the entry the encoder wrote does not decode: %v", err)
		}
		if env.Index != e.Index || env.Epoch != e.Epoch || env.TimeMs != e.TimeMs || env.PrevHash != e.PrevHash {
			t.Fatalf("decoded %+v, encoded %+v", env, e)
		}
		if got, ok := scanCommands(env.Body); !ok || !reflect.DeepEqual(normalize(got), normalize(cmds)) {
			t.Fatalf("scanned commands %+v (taken: %v), encoded %+v", got, ok, cmds)
		}
	})
}

// normalize makes an empty list and no list compare equal.
func normalize(cmds []Command) []Command {
	if len(cmds) == 0 {
		return nil
	}
	return cmds
}
