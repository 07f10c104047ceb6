package peer

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/enginetest"
	"github.com/zkbank/zkbank/engine/entry"
)

func TestFramesRoundTripAndRefuseOversizedOnes(t *testing.T) {
	var buf bytes.Buffer
	want := []*engine.Entry{enginetest.Sized(1, 5), enginetest.Sized(2, 500)}
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
