package keystore

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/enginetest"
)

// tb is what the helpers need of a *testing.T or a *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// A window of two entries, so that keys leave memory at once.
func smallWindow(retainMs int64) engine.Config {
	return engine.Config{KeyWindowEntries: 2, KeyWindowMax: 100, KeyRetainMs: retainMs, ClosedHoldsKept: 10}
}

func newEngine(t tb, cfg engine.Config) *engine.Engine {
	t.Helper()
	e, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// nextEntry is e's next entry, at body version 6 and timeMs, as a log
// would carry it (encoded and decoded).
func nextEntry(t tb, e *engine.Engine, timeMs int64, cmds ...engine.Command) *engine.Entry {
	t.Helper()
	ent, err := enginetest.After(e, timeMs, engine.BodyV6, cmds...)
	if err != nil {
		t.Fatal(err)
	}
	return ent
}

func apply(t tb, s *Store, e *engine.Engine, ent *engine.Entry) []engine.Result {
	t.Helper()
	res, err := s.Apply(e, ent)
	if err != nil {
		t.Fatalf("apply %d: %v", ent.Index, err)
	}
	return res
}

func create(number string, amount uint64) engine.Command {
	return engine.Command{Op: engine.OpCreateAccount, Key: "create-" + number, Account: number, Name: number, Amount: amount}
}

func deposit(key, number string, amount uint64) engine.Command {
	return engine.Command{Op: engine.OpDeposit, Key: key, Account: number, Amount: amount}
}

func openStore(t testing.TB, dir string, retainMs int64) *Store {
	t.Helper()
	s, err := Open(dir, Options{RetainMs: retainMs})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func balance(t testing.TB, e *engine.Engine, number string) uint64 {
	t.Helper()
	a, ok := e.Get(number)
	if !ok {
		t.Fatalf("no account %s", number)
	}
	return a.Balance
}

// TestARetryIsAnsweredFromDisk: a key that left the window is answered
// with its first outcome from the store, also after the store is closed
// and opened again, and applied anew once its span has passed.
func TestARetryIsAnsweredFromDisk(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 1_000)
	e := newEngine(t, smallWindow(1_000))
	apply(t, s, e, nextEntry(t, e, 1, create("A", 100)))
	dep := deposit("d-1", "A", 5)
	apply(t, s, e, nextEntry(t, e, 10, dep))
	for at := int64(20); at <= 40; at += 10 {
		apply(t, s, e, nextEntry(t, e, at))
	}
	if r := apply(t, s, e, nextEntry(t, e, 50, dep))[0]; !r.Replayed || r.Accounts()[0].Balance != 105 {
		t.Fatalf("a retry once the key left the window: %+v", r)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, 1_000)
	defer s.Close()
	if r := apply(t, s, e, nextEntry(t, e, 900, dep))[0]; !r.Replayed {
		t.Fatalf("a retry after the store was opened again: %+v", r)
	}
	if r := apply(t, s, e, nextEntry(t, e, 1_010, dep))[0]; r.Replayed || balance(t, e, "A") != 110 {
		t.Fatalf("a retry past the span: %+v, want applied anew", r)
	}
}

// TestAKeyUsedAgainAfterItsSpan: a key used anew once its span passed has
// two records; a replay from a snapshot taken between them answers a
// retry of the first use with the first, as it did the first time.
func TestAKeyUsedAgainAfterItsSpan(t *testing.T) {
	s := OpenMem(100)
	defer s.Close()
	e := newEngine(t, smallWindow(100))
	apply(t, s, e, nextEntry(t, e, 1, create("A", 100)))
	apply(t, s, e, nextEntry(t, e, 10, deposit("k", "A", 1)))
	apply(t, s, e, nextEntry(t, e, 20))
	apply(t, s, e, nextEntry(t, e, 30))
	var snap bytes.Buffer
	if err := e.WriteState(&snap); err != nil {
		t.Fatal(err)
	}
	var log []*engine.Entry
	next := func(at int64, cmds ...engine.Command) []engine.Result {
		ent := nextEntry(t, e, at, cmds...)
		log = append(log, ent)
		return apply(t, s, e, ent)
	}
	if r := next(100, deposit("k", "A", 1))[0]; !r.Replayed {
		t.Fatalf("a retry within the span: %+v", r)
	}
	if r := next(120, deposit("k", "A", 1))[0]; r.Replayed {
		t.Fatalf("the key once its span passed: %+v, want applied anew", r)
	}
	for at := int64(130); at <= 160; at += 10 {
		next(at) // the second use leaves the window too
	}
	want := e.StateHash()
	replay, err := engine.Restore(e.Config(), &snap)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range log {
		apply(t, s, replay, ent)
	}
	if replay.StateHash() != want || balance(t, replay, "A") != 102 {
		t.Fatalf("the replay from before the retry ended elsewhere (A holds %d)", balance(t, replay, "A"))
	}
}

// TestTheStoreVouchesForSyncedSnapshots: a node starts only from a
// snapshot the store was synced for, or imported with; a reset store
// vouches for none.
func TestTheStoreVouchesForSyncedSnapshots(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 10)
	if !s.Vouches(0) || s.Vouches(1) {
		t.Fatal("a new store vouches for the empty state only")
	}
	if err := s.Sync(7); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(5); err != nil { // a late, older snapshot does not take it back
		t.Fatal(err)
	}
	if !s.Vouches(3) || !s.Vouches(7) || s.Vouches(8) {
		t.Fatal("after a sync at 7")
	}
	s.Close()
	s = openStore(t, dir, 10)
	defer s.Close()
	if !s.Vouches(7) {
		t.Fatal("the vouch did not survive a reopen")
	}
	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	if s.Vouches(0) || s.Vouches(7) {
		t.Fatal("a reset store vouches")
	}
	if err := s.Sync(9); err != nil || s.Vouches(9) {
		t.Fatalf("a sync after a reset, before an import, vouches (%v)", err)
	}
}

// spillMany applies n deposits, each under its own key, one per entry,
// 10 ms apart, and as many empty entries, so that every key spills.
func spillMany(t testing.TB, s *Store, e *engine.Engine, n int) {
	t.Helper()
	if e.Index() == 0 {
		apply(t, s, e, nextEntry(t, e, 1, create("A", 0)))
	}
	for i := 0; i < n; i++ {
		apply(t, s, e, nextEntry(t, e, e.TimeMs()+10, deposit(fmt.Sprintf("d-%d", e.Index()), "A", 1)))
	}
	for i := 0; i < 3; i++ {
		apply(t, s, e, nextEntry(t, e, e.TimeMs()+10))
	}
}

func storedKeys(t testing.TB, s *Store) uint64 {
	t.Helper()
	n, err := s.Export(&bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCollectForgetsBehindTheOldestSnapshot: records first used more than
// the span before the oldest kept snapshot go, a few with each apply; the
// rest stay, and still answer.
func TestCollectForgetsBehindTheOldestSnapshot(t *testing.T) {
	s := OpenMem(100)
	defer s.Close()
	e := newEngine(t, smallWindow(100))
	spillMany(t, s, e, 50) // times 11..501: keys first used at 11..61 are more than 100 ms before 161
	if got := storedKeys(t, s); got < 8 {
		t.Fatalf("%d keys stored, want the last span's", got)
	}
	before := storedKeys(t, s)
	s.CollectBelow(17) // the snapshot at 17 is at time 161
	spillMany(t, s, e, 20)
	after := storedKeys(t, s)
	if after >= before+20 {
		t.Fatalf("nothing was collected: %d keys, then %d", before, after)
	}
	// What a replay from 17 on needs is still there: a retry of the key
	// first used at 62 (entry 7, at 71 ms), asked at 165 ms.
	replay := newEngine(t, smallWindow(100))
	for _, ent := range rebuild(t, 17) {
		if _, err := replay.Apply(ent); err != nil {
			t.Fatal(err)
		}
	}
	if r := apply(t, s, replay, nextEntry(t, replay, 165, deposit("d-7", "A", 1)))[0]; !r.Replayed {
		t.Fatalf("a record a replay from the oldest snapshot needs was collected: %+v", r)
	}
}

// rebuild is the log spillMany's first entries make, up to index.
func rebuild(t testing.TB, index uint64) []*engine.Entry {
	t.Helper()
	s := OpenMem(100)
	defer s.Close()
	e := newEngine(t, smallWindow(100))
	var out []*engine.Entry
	ent := nextEntry(t, e, 1, create("A", 0))
	for e.Index() < index {
		out = append(out, ent)
		apply(t, s, e, ent)
		ent = nextEntry(t, e, e.TimeMs()+10, deposit(fmt.Sprintf("d-%d", e.Index()), "A", 1))
	}
	return out
}

// TestExportAndImport: a peer's records come over whole, the store then
// vouches for the peer's snapshot, and a stream cut or damaged anywhere
// is refused and vouches for nothing new.
func TestExportAndImport(t *testing.T) {
	peer := OpenMem(1_000)
	defer peer.Close()
	e := newEngine(t, smallWindow(1_000))
	spillMany(t, peer, e, 30)
	var stream bytes.Buffer
	n, err := peer.Export(&stream)
	if err != nil || n == 0 {
		t.Fatalf("export: %d keys, %v", n, err)
	}
	s := OpenMem(1_000)
	defer s.Close()
	if got, err := s.Import(bytes.NewReader(stream.Bytes()), e.Index()); err != nil || got != n || !s.Vouches(e.Index()) {
		t.Fatalf("import: %d keys of %d, %v", got, n, err)
	}
	var again bytes.Buffer
	if _, err := s.Export(&again); err != nil || !bytes.Equal(again.Bytes(), stream.Bytes()) {
		t.Fatalf("the imported store exports something else (%v)", err)
	}
	if r := apply(t, s, e, nextEntry(t, e, e.TimeMs()+10, deposit("d-2", "A", 1)))[0]; !r.Replayed {
		t.Fatalf("a retry answered from imported records: %+v", r)
	}
	raw, later := stream.Bytes(), e.Index()+5
	for cut := 0; cut < len(raw); cut++ {
		if _, err := s.Import(bytes.NewReader(raw[:cut]), later); !errors.Is(err, ErrBadStream) || s.Vouches(later) {
			t.Fatalf("a stream cut to %d of %d bytes: %v", cut, len(raw), err)
		}
	}
	bad := append([]byte(nil), raw...)
	bad[len(exportMagic)+3] ^= 0x55
	if _, err := s.Import(bytes.NewReader(bad), e.Index()); err == nil {
		t.Fatal("a damaged stream was imported")
	}
}
