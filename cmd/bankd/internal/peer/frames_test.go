package peer

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
)

func testEntry(t *testing.T, index uint64, payload int) *engine.Entry {
	t.Helper()
	e := &engine.Entry{Envelope: entry.Envelope{Index: index, Epoch: 1}, Commands: []engine.Command{
		{Op: engine.OpCreateAccount, Key: "k", Account: "A-1", Name: string(bytes.Repeat([]byte("n"), payload))}}}
	if _, err := engine.EncodeEntry(e); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestFramesRoundTripAndRefuseOversizedOnes(t *testing.T) {
	var buf bytes.Buffer
	want := []*engine.Entry{testEntry(t, 1, 5), testEntry(t, 2, 500)}
	if err := writeFrames(&buf, [][]byte{want[0].Raw(), want[1].Raw()}); err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		got, err := readFrame(&buf)
		if err != nil || got.Hash() != w.Hash() || got.Index != w.Index {
			t.Fatalf("read entry %v (%v), want %d", got, err, w.Index)
		}
	}
	var size [4]byte
	binary.BigEndian.PutUint32(size[:], entry.BytesMax+1)
	if _, err := readFrame(bytes.NewReader(size[:])); err == nil {
		t.Fatal("a frame over the entry limit was read")
	}
}
