package snapshot

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/enginetest"
)

func engineAt(t *testing.T, entries int) *engine.Engine {
	t.Helper()
	e, _ := engine.New(engine.DefaultConfig())
	applyAll(t, e, enginetest.NewLog(11).Entries(entries, 30))
	return e
}

func applyAll(t *testing.T, e *engine.Engine, ents []*engine.Entry) {
	t.Helper()
	for _, ent := range ents {
		if _, err := e.Apply(ent); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSaveOpenRestore(t *testing.T) {
	e := engineAt(t, 20)
	store, err := NewStore(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	img, err := Capture(e, 1234)
	if err != nil {
		t.Fatal(err)
	}
	info, err := store.Save(img)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Open(info.Path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Meta != img.Meta {
		t.Fatalf("meta %+v, want %+v", got.Meta, img.Meta)
	}
	r, err := got.Restore(e.Config())
	if err != nil {
		t.Fatal(err)
	}
	if r.StateHash() != e.StateHash() || got.Meta.StateHash != e.StateHash() {
		t.Fatal("restored state differs")
	}
	if fi, _ := os.Stat(info.Path); fi.Size() != img.Size() {
		t.Fatalf("file size %d, image size %d", fi.Size(), img.Size())
	}
}

// TestStreamedSnapshotEqualsSaved checks that Begin+Commit, which never
// holds the state in memory, writes the very bytes Capture+Save writes.
func TestStreamedSnapshotEqualsSaved(t *testing.T) {
	e := engineAt(t, 20)
	saved, streamed := mustStore(t), mustStore(t)
	img, err := Capture(e, 77)
	if err != nil {
		t.Fatal(err)
	}
	want, err := saved.Save(img)
	if err != nil {
		t.Fatal(err)
	}
	p, err := streamed.Begin(e, 77)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Commit()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(want.Path)
	b, _ := os.ReadFile(got.Path)
	if !bytes.Equal(a, b) || got.Size != int64(len(b)) || got.Index != e.Index() {
		t.Fatalf("streamed snapshot (%d bytes, info %+v) differs from saved one (%d bytes)", len(b), got, len(a))
	}
	if _, err := Open(got.Path); err != nil {
		t.Fatal(err)
	}
	aborted, err := streamed.Begin(engineAt(t, 21), 0)
	if err != nil {
		t.Fatal(err)
	}
	aborted.Abort()
	if left, _ := filepath.Glob(filepath.Join(streamed.Dir(), "*")); len(left) != 1 {
		t.Fatalf("files after an abort: %v, want only the committed snapshot", left)
	}
}

// TestSnapshotOfCapture writes a snapshot from an engine.Capture after the
// engine has moved on: the file is the one the engine gave at the capture.
func TestSnapshotOfCapture(t *testing.T) {
	ents := enginetest.NewLog(11).Entries(40, 30)
	e, _ := engine.New(engine.DefaultConfig())
	applyAll(t, e, ents[:20])
	img, err := Capture(e, 77)
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.Capture(&sync.Mutex{})
	if err != nil {
		t.Fatal(err)
	}
	applyAll(t, e, ents[20:])
	p, err := mustStore(t).Begin(c, 77)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Commit()
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if _, err := img.WriteTo(&want); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(got.Path)
	if !bytes.Equal(b, want.Bytes()) || got.Index != 20 || e.Index() != 40 {
		t.Fatalf("snapshot of the capture at %d (%d bytes) differs from the state then (%d bytes); engine at %d", got.Index, len(b), want.Len(), e.Index())
	}
}

func mustStore(t *testing.T) *Store {
	t.Helper()
	s, err := NewStore(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRetentionAndLeftovers(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "snap-00000000000000000009.zks.tmp"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	store, err := NewStore(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := engine.New(engine.DefaultConfig())
	log := enginetest.NewLog(12)
	for i := 0; i < 5; i++ {
		if _, err := e.Apply(log.Next(3)); err != nil {
			t.Fatal(err)
		}
		img, _ := Capture(e, 0)
		if _, err := store.Save(img); err != nil {
			t.Fatal(err)
		}
	}
	list, _ := store.List()
	if len(list) != 2 || list[0].Index != 5 || list[1].Index != 4 {
		t.Fatalf("kept %+v, want indexes 5 and 4", list)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// TestDamageIsDetected truncates at every offset, flips bytes all over, and
// writes garbage: each is ErrCorrupt, never a loaded snapshot.
func TestDamageIsDetected(t *testing.T) {
	img, err := Capture(engineAt(t, 5), 99)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := img.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	store := mustStore(t)
	for _, err := range readEveryWay(store, good) {
		if err != nil {
			t.Fatalf("good snapshot refused: %v", err)
		}
	}
	for n := 0; n < len(good); n++ {
		for _, err := range readEveryWay(store, good[:n]) {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("truncated to %d of %d: %v", n, len(good), err)
			}
		}
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	for i := 0; i < 2000; i++ {
		bad := bytes.Clone(good)
		bad[rng.IntN(len(bad))] ^= byte(rng.IntN(255) + 1)
		for _, err := range readEveryWay(store, bad) {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("flipped byte accepted: %v", err)
			}
		}
	}
	if list, _ := store.List(); len(list) != 1 {
		t.Fatalf("store holds %v after the damaged receives, want only the good one", list)
	}
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	if _, err := Read(bytes.NewReader(garbage)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("garbage accepted: %v", err)
	}
	path := filepath.Join(t.TempDir(), "snap-00000000000000000005.zks")
	if err := os.WriteFile(path, append(bytes.Clone(good), 0), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing byte accepted: %v", err)
	}
}

// readEveryWay reads data as a snapshot with Read, with Load's reader and
// with Store.Receive, and returns their errors.
func readEveryWay(store *Store, data []byte) []error {
	_, errRead := Read(bytes.NewReader(data))
	_, _, errLoad := load(bytes.NewReader(data), engine.DefaultConfig())
	_, errReceive := store.Receive(bytes.NewReader(data))
	return []error{errRead, errLoad, errReceive}
}

// TestLoadAndReceive: a snapshot received from a stream lands in the
// store byte for byte, and Load restores the same engine Open+Restore
// does.
func TestLoadAndReceive(t *testing.T) {
	e := engineAt(t, 20)
	img, err := Capture(e, 5)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := img.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	store := mustStore(t)
	info, err := store.Receive(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(info.Path); !bytes.Equal(got, buf.Bytes()) || info.Size != int64(buf.Len()) {
		t.Fatalf("received file (%d bytes, info %+v) differs from the stream (%d bytes)", len(got), info, buf.Len())
	}
	loaded, meta, err := Load(info.Path, e.Config())
	if err != nil {
		t.Fatal(err)
	}
	if meta != img.Meta || loaded.StateHash() != e.StateHash() {
		t.Fatalf("loaded meta %+v, want %+v (or the state differs)", meta, img.Meta)
	}
}

// TestHeaderMustAgreeWithState: a snapshot whose checksums are all valid
// but whose header lies about the state (a bug, or a forged file) is
// refused at restore.
func TestHeaderMustAgreeWithState(t *testing.T) {
	img, _ := Capture(engineAt(t, 5), 0)
	img.Meta.TotalBalance++
	var buf bytes.Buffer
	if _, err := img.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	read, err := Read(&buf)
	if err != nil {
		t.Fatal(err) // checksums are consistent
	}
	if _, err := read.Restore(engine.DefaultConfig()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("lying header accepted: %v", err)
	}
	buf.Reset()
	img.WriteTo(&buf)
	if _, _, err := load(&buf, engine.DefaultConfig()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("lying header accepted by Load: %v", err)
	}
}
