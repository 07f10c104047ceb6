package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
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

func mustStore(t *testing.T) *Store {
	t.Helper()
	s, err := NewStore(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// save writes a snapshot of e into store.
func save(t *testing.T, store *Store, e State, nowMs int64) Info {
	t.Helper()
	info, err := store.Save(e, nowMs)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// encoded is what a snapshot of e must be, byte for byte, built here from
// the format's definition: header, the engine's state, the trailer.
func encoded(t *testing.T, e *engine.Engine, nowMs int64) []byte {
	t.Helper()
	var state bytes.Buffer
	if err := e.WriteState(&state); err != nil {
		t.Fatal(err)
	}
	m := Meta{Index: e.Index(), Epoch: e.Epoch(), EntryHash: e.LastHash(), StateHash: sha256.Sum256(state.Bytes()),
		Accounts: e.Totals().Accounts, TotalBalance: e.Totals().Balance, CreatedMs: nowMs, StateLen: uint64(state.Len())}
	return seal(append(m.encode(), state.Bytes()...))
}

// seal appends the trailer to a header and state.
func seal(b []byte) []byte {
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// TestTheFileIsTheFormatByteForByte: Begin+Commit, which never holds the
// state in memory, writes exactly the documented format, and Verify and
// Load read it back.
func TestTheFileIsTheFormatByteForByte(t *testing.T) {
	e := engineAt(t, 20)
	store := mustStore(t)
	info := save(t, store, e, 77)
	got, _ := os.ReadFile(info.Path)
	want := encoded(t, e, 77)
	if !bytes.Equal(got, want) || info.Size != int64(len(got)) || info.Index != e.Index() {
		t.Fatalf("snapshot (%d bytes, info %+v) differs from the format (%d bytes)", len(got), info, len(want))
	}
	m, err := Verify(info.Path)
	if err != nil || m.StateHash != e.StateHash() || m.CreatedMs != 77 {
		t.Fatalf("verify: %+v %v", m, err)
	}
	loaded, lm, err := Load(info.Path, e.Config())
	if err != nil || !reflect.DeepEqual(lm, m) || loaded.StateHash() != e.StateHash() {
		t.Fatalf("load: %+v %v", lm, err)
	}
	aborted, err := store.Begin(engineAt(t, 21), 0)
	if err != nil {
		t.Fatal(err)
	}
	aborted.Abort()
	if left, _ := filepath.Glob(filepath.Join(store.Dir(), "*")); len(left) != 1 {
		t.Fatalf("files after an abort: %v, want only the committed snapshot", left)
	}
}

// TestSnapshotOfCapture writes a snapshot from an engine.Capture after the
// engine has moved on: the file is the one the engine gave at the capture.
func TestSnapshotOfCapture(t *testing.T) {
	ents := enginetest.NewLog(11).Entries(40, 30)
	e, _ := engine.New(engine.DefaultConfig())
	applyAll(t, e, ents[:20])
	want := encoded(t, e, 77)
	c, err := e.Capture(&sync.Mutex{})
	if err != nil {
		t.Fatal(err)
	}
	applyAll(t, e, ents[20:])
	got := save(t, mustStore(t), c, 77)
	b, _ := os.ReadFile(got.Path)
	if !bytes.Equal(b, want) || got.Index != 20 || e.Index() != 40 {
		t.Fatalf("snapshot of the capture at %d (%d bytes) differs from the state then (%d bytes); engine at %d", got.Index, len(b), len(want), e.Index())
	}
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
		save(t, store, e, 0)
	}
	list, _ := store.List()
	if len(list) != 2 || list[0].Index != 5 || list[1].Index != 4 {
		t.Fatalf("kept %+v, want indexes 5 and 4", list)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// TestDamageIsDetected truncates the file (at every offset of the header
// and the trailer, every seventh of the state), flips bytes all over, and
// writes garbage: each is ErrCorrupt, never a loaded snapshot.
func TestDamageIsDetected(t *testing.T) {
	good := encoded(t, engineAt(t, 5), 99)
	store := mustStore(t)
	for _, err := range readEveryWay(t, store, good) {
		if err != nil {
			t.Fatalf("good snapshot refused: %v", err)
		}
	}
	for n := 0; n < len(good); n++ {
		if n > headerLen && n < len(good)-trailerLen && n%7 != 0 {
			continue
		}
		for _, err := range readEveryWay(t, store, good[:n]) {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("truncated to %d of %d: %v", n, len(good), err)
			}
		}
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	for i := 0; i < 500; i++ {
		bad := bytes.Clone(good)
		bad[rng.IntN(len(bad))] ^= byte(rng.IntN(255) + 1)
		for _, err := range readEveryWay(t, store, bad) {
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
	for _, err := range readEveryWay(t, store, garbage) {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("garbage accepted: %v", err)
		}
	}
	path := filepath.Join(t.TempDir(), "snap.zks")
	if err := os.WriteFile(path, append(bytes.Clone(good), 0), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errVerify := Verify(path)
	_, _, errLoad := Load(path, engine.DefaultConfig())
	for _, err := range []error{errVerify, errLoad} {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("trailing byte accepted: %v", err)
		}
	}
}

// readEveryWay reads data as Verify, Load and Store.Receive read a
// snapshot, and returns their errors.
func readEveryWay(t *testing.T, store *Store, data []byte) []error {
	_, errVerify := verify(bytes.NewReader(data))
	_, _, errLoad := load(bytes.NewReader(data), engine.DefaultConfig())
	_, errReceive := store.Receive(bytes.NewReader(data))
	return []error{errVerify, errLoad, errReceive}
}

// TestReceiveStoresTheStreamAsItIs: a snapshot received from a stream
// lands in the store byte for byte, and loads.
func TestReceiveStoresTheStreamAsItIs(t *testing.T) {
	e := engineAt(t, 20)
	data := encoded(t, e, 5)
	info, err := mustStore(t).Receive(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(info.Path); !bytes.Equal(got, data) || info.Size != int64(len(data)) {
		t.Fatalf("received file (%d bytes, info %+v) differs from the stream (%d bytes)", len(got), info, len(data))
	}
	if loaded, _, err := Load(info.Path, e.Config()); err != nil || loaded.StateHash() != e.StateHash() {
		t.Fatalf("load: %v", err)
	}
}

// TestHeaderMustAgreeWithState: a snapshot whose checksums are all valid
// but whose header lies about the state (a bug, or a forged file) is
// refused at restore.
func TestHeaderMustAgreeWithState(t *testing.T) {
	good := encoded(t, engineAt(t, 5), 0)
	lying := bytes.Clone(good[:len(good)-trailerLen])
	binary.LittleEndian.PutUint64(lying[104:], binary.LittleEndian.Uint64(lying[104:])+1) // total balance
	path := filepath.Join(t.TempDir(), "snap.zks")
	if err := os.WriteFile(path, seal(lying), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(path); err != nil {
		t.Fatal(err) // checksums are consistent
	}
	if _, _, err := Load(path, engine.DefaultConfig()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("lying header accepted by Load: %v", err)
	}
}

// A signed snapshot keeps its signature block through every read and a
// transfer; a block of no bytes, or one cut short, is corrupt.
func TestASignedSnapshotKeepsItsSignature(t *testing.T) {
	store := mustStore(t)
	var signed engine.Hash
	store.SignWith(func(sum engine.Hash) ([]byte, error) { signed = sum; return []byte("sig:" + sum.String()[:8]), nil })
	e := engineAt(t, 5)
	info, err := store.Save(e, 1)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Verify(info.Path)
	want := "sig:" + signed.String()[:8]
	if err != nil || !m.Signed || string(m.Signature) != want || m.Checksum != signed || info.Size != m.Size() {
		t.Fatalf("verify a signed snapshot: %+v %v (info %+v)", m, err, info)
	}
	data, err := os.ReadFile(info.Path)
	if err != nil {
		t.Fatal(err)
	}
	other := mustStore(t)
	got, err := other.Receive(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	copied, err := os.ReadFile(got.Path)
	if err != nil || !bytes.Equal(copied, data) {
		t.Fatalf("a received signed snapshot differs from the sent one: %v", err)
	}
	for name, bad := range map[string][]byte{
		"cut short":   data[:len(data)-2],
		"empty block": append(append([]byte(nil), data[:len(data)-len(want)-4]...), 0, 0, 0, 0),
	} {
		if _, err := other.Receive(bytes.NewReader(bad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}
