package history

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/enginetest"
	"github.com/zkbank/zkbank/engine/entry"
)

func newEngine(t testing.TB) *engine.Engine {
	t.Helper()
	e, err := engine.New(engine.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// nextEntry is e's next entry at timeMs, as a log would carry it.
func nextEntry(t testing.TB, e *engine.Engine, timeMs int64, cmds ...engine.Command) *engine.Entry {
	t.Helper()
	ent, err := enginetest.After(e, timeMs, engine.BodyVersionMax, cmds...)
	if err != nil {
		t.Fatal(err)
	}
	return ent
}

// applyAdd applies cmds as e's next entry and adds it to s.
func applyAdd(t testing.TB, s *Store, e *engine.Engine, cmds ...engine.Command) *engine.Entry {
	t.Helper()
	ent := nextEntry(t, e, 1_000*int64(e.Index()+1), cmds...)
	if _, err := s.Apply((*engine.Engine).Apply, e, ent); err != nil {
		t.Fatal(err)
	}
	return ent
}

func create(number string, amount uint64) engine.Command {
	return engine.Command{Op: engine.OpCreateAccount, Key: "c-" + number, Account: number, Name: "n " + number, Amount: amount}
}

func deposit(key, number string, amount uint64) engine.Command {
	return engine.Command{Op: engine.OpDeposit, Key: key, Account: number, Amount: amount}
}

func transfer(key, from, to string, amount uint64) engine.Command {
	return engine.Command{Op: engine.OpTransfer, Key: key, Account: from, To: to, Amount: amount}
}

func statement(t testing.TB, s *Store, account string, after Cursor, limit int) []Event {
	t.Helper()
	var out []Event
	err := s.Statement(account, after, func(ev Event) bool {
		out = append(out, ev)
		return len(out) < limit
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func events(t testing.TB, s *Store, after Cursor) []Event {
	t.Helper()
	var out []Event
	if err := s.Events(after, func(ev Event) bool { out = append(out, ev); return true }); err != nil {
		t.Fatal(err)
	}
	return out
}

// A statement lists every command that touched the account, rejected ones
// too, but not a replayed retry; each with the balance after it, the
// direction and the other account.
func TestAStatementListsWhatTouchedTheAccount(t *testing.T) {
	s, e := OpenMem(), newEngine(t)
	defer s.Close()
	applyAdd(t, s, e, create("A", 10), create("B", 0))
	applyAdd(t, s, e, deposit("d1", "A", 5), transfer("t1", "A", "B", 12), deposit("d2", "B", 1))
	applyAdd(t, s, e, transfer("t2", "A", "B", 100), deposit("d3", "A", 5), transfer("t1", "A", "B", 12)) // refused; ok; a replay

	type line struct {
		cursor, dir, other, code string
		balance                  uint64
	}
	var got []line
	for _, ev := range statement(t, s, "A", Cursor{}, 100) {
		dir, other := ev.Direction("A")
		after, _ := ev.After("A")
		got = append(got, line{ev.Cursor.String(), dir, other, ev.Code.String(), after.Balance})
	}
	want := []line{
		{"1.0", "in", "", "ok", 10},
		{"2.0", "in", "", "ok", 15},
		{"2.1", "out", "B", "ok", 3},
		{"3.0", "out", "B", "insufficient_funds", 3}, // as it was
		{"3.1", "in", "", "ok", 8},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("statement of A:\n got %+v\nwant %+v", got, want)
	}
	b := statement(t, s, "B", Cursor{}, 100)
	if len(b) != 4 || b[1].Cursor.String() != "2.1" {
		t.Fatalf("statement of B: %+v", b)
	}
	if dir, other := b[1].Direction("B"); dir != "in" || other != "A" {
		t.Fatalf("B's side of the transfer: %s %s", dir, other)
	}
	if ev := statement(t, s, "A", Cursor{}, 1)[0]; ev.Name != "n A" || ev.TimeMs != 1_000 || ev.Op != engine.OpCreateAccount {
		t.Fatalf("the create: %+v", ev)
	}
}

// Paging after each cursor, and after an entry's index alone, gives the
// rest of the statement and of the feed: no gap, no duplicate.
func TestPagesGoOnAfterTheirCursor(t *testing.T) {
	s, e := OpenMem(), newEngine(t)
	defer s.Close()
	applyAdd(t, s, e, create("A", 1), create("B", 1))
	for i := range 20 {
		applyAdd(t, s, e, deposit(fmt.Sprint("d", i), "A", 1), transfer(fmt.Sprint("t", i), "A", "B", 1), deposit(fmt.Sprint("x", i), "B", 1))
		if i%3 == 0 { // the index in groups on disk, and some of it pending
			if err := s.index.flush(s.db); err != nil {
				t.Fatal(err)
			}
		}
	}
	all := events(t, s, Cursor{})
	if len(all) != 2+20*3 {
		t.Fatalf("%d events, want %d", len(all), 2+20*3)
	}
	for i, ev := range all {
		if rest := events(t, s, ev.Cursor); !reflect.DeepEqual(rest, all[i+1:]) && len(rest)+len(all[i+1:]) > 0 {
			t.Fatalf("after %s: %d events, want %d", ev.Cursor, len(rest), len(all)-i-1)
		}
	}
	c, _ := ParseCursor("5")
	if rest := events(t, s, c); rest[0].Cursor.String() != "6.0" {
		t.Fatalf("after entry 5 the feed starts at %s", rest[0].Cursor)
	}
	var paged []Event
	after := Cursor{}
	for {
		page := statement(t, s, "A", after, 7)
		paged = append(paged, page...)
		if len(page) < 7 {
			break
		}
		after = page[len(page)-1].Cursor
	}
	if want := statement(t, s, "A", Cursor{}, 1000); !reflect.DeepEqual(paged, want) || len(want) != 1+2*20 {
		t.Fatalf("paged statement: %d lines, whole: %d", len(paged), len(want))
	}
}

// A store that cannot continue where applies start begins again there,
// and refuses reads from before it; one that can keeps what it holds,
// across a reopen.
func TestBeginKeepsWhatContinuesAndForgetsWhatCannot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "history")
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t)
	if err := s.Begin(0); err != nil {
		t.Fatal(err)
	}
	applyAdd(t, s, e, create("A", 1))
	applyAdd(t, s, e, deposit("d1", "A", 1))
	applyAdd(t, s, e, deposit("d2", "A", 1))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.From() != 1 || s.Through() != 3 {
		t.Fatalf("reopened: %d..%d", s.From(), s.Through())
	}
	if err := s.Begin(2); err != nil || s.From() != 1 || s.Through() != 3 {
		t.Fatalf("begin 2: %v, %d..%d", err, s.From(), s.Through())
	}
	// A replay from 2 adds entry 3 again: the same events.
	replayed := newEngine(t)
	for range 2 {
		ent := nextEntry(t, replayed, 1_000*int64(replayed.Index()+1), []engine.Command{create("A", 1), deposit("d1", "A", 1)}[replayed.Index()])
		if _, err := replayed.Apply(ent); err != nil {
			t.Fatal(err)
		}
	}
	before, lines := events(t, s, Cursor{}), statement(t, s, "A", Cursor{}, 100)
	applyAdd(t, s, replayed, deposit("d2", "A", 1))
	if after := events(t, s, Cursor{}); !reflect.DeepEqual(before, after) {
		t.Fatalf("a replay changed the events:\n%+v\n%+v", before, after)
	}
	for range 2 { // the replayed entry's index pending, then in a group that overlaps the one on disk
		if again := statement(t, s, "A", Cursor{}, 100); !reflect.DeepEqual(again, lines) || len(lines) != 3 {
			t.Fatalf("a replay changed the statement: %d lines, then %d", len(lines), len(again))
		}
		if err := s.index.flush(s.db); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Add(&engine.Entry{Envelope: entry.Envelope{Index: 5}}, nil, e, nil); err == nil {
		t.Fatal("a store through 3 took entry 5")
	}
	if err := s.Begin(7); err != nil || s.From() != 8 || s.Through() != 7 {
		t.Fatalf("begin past the end: %v, %d..%d", err, s.From(), s.Through())
	}
	if got := events(t, s, Cursor{Index: 7, Position: lastPosition}); len(got) != 0 {
		t.Fatalf("events left after a reset: %+v", got)
	}
	for _, c := range []Cursor{{}, {Index: 6, Position: lastPosition - 1}, {Index: 7, Position: 0}} {
		if err := s.Events(c, func(Event) bool { return true }); !errors.Is(err, ErrGone) {
			t.Errorf("events after %s of a store from 8: %v, want ErrGone", c, err)
		}
		if err := s.Statement("A", c, func(Event) bool { return true }); !errors.Is(err, ErrGone) {
			t.Errorf("statement after %s of a store from 8: %v, want ErrGone", c, err)
		}
	}
}

func TestParseCursor(t *testing.T) {
	for in, want := range map[string]Cursor{"0": {0, lastPosition}, "12.0": {12, 0}, "12.7": {12, 7}, "12": {12, lastPosition}} {
		if got, err := ParseCursor(in); err != nil || got != want || got.String() != in {
			t.Errorf("ParseCursor(%q) = %v, %v; want %v, written back the same", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".", "x", "1.", "1.x", "-1", "1.-1", "1.4294967295", "1.2.3"} {
		if _, err := ParseCursor(in); err == nil {
			t.Errorf("ParseCursor(%q) accepted", in)
		}
	}
}

func FuzzEventEncoding(f *testing.F) {
	f.Add(int64(5), byte(3), byte(0), byte(0), "A", "B", "", uint64(7), uint64(0), uint64(0), "teller", "A", uint64(9), uint64(1))
	f.Fuzz(func(t *testing.T, ms int64, op, applied, code byte, account, to, name string, amount, hold, approval uint64, by, after string, bal, held uint64) {
		ev := Event{Cursor: Cursor{Index: 4, Position: 2}, TimeMs: ms, Op: engine.Op(op), Applied: engine.Op(applied), Code: engine.Code(code),
			Account: account, To: to, Name: name, Amount: amount, Hold: hold, Approval: approval, By: by}
		if after != "" {
			ev.Accounts = []AccountAfter{{Number: after, Balance: bal, Held: held}}
		}
		raw := appendEvent(nil, &ev)
		got, err := decodeEvent(ev.Cursor, raw)
		if err != nil || !reflect.DeepEqual(got, ev) {
			t.Fatalf("round trip: %+v, %v; want %+v", got, err, ev)
		}
		for i := range raw { // a cut event is refused, never read as another
			if _, err := decodeEvent(ev.Cursor, raw[:i]); err == nil {
				t.Fatalf("an event cut at %d of %d was read", i, len(raw))
			}
		}
	})
}

// TestTrimBelowForgetsTheOldestEvents: trimmed, the store starts at the
// index given; its statements pass over the index's older cursors, and a
// cursor before it is gone.
func TestTrimBelowForgetsTheOldestEvents(t *testing.T) {
	s, e := OpenMem(), newEngine(t)
	defer s.Close()
	applyAdd(t, s, e, create("A", 1))
	for i := range 5 {
		applyAdd(t, s, e, deposit(fmt.Sprint("d", i), "A", 1))
	}
	if err := s.index.flush(s.db); err != nil { // groups on disk that begin before the trim
		t.Fatal(err)
	}
	applyAdd(t, s, e, deposit("late", "A", 1))
	if err := s.TrimBelow(4); err != nil {
		t.Fatal(err)
	}
	if s.From() != 4 || s.Through() != 7 {
		t.Fatalf("after the trim: %d..%d", s.From(), s.Through())
	}
	lines := statement(t, s, "A", EndOf(3), 100)
	if len(lines) != 4 || lines[0].Index != 4 || lines[3].Index != 7 {
		t.Fatalf("the statement after the trim: %+v", lines)
	}
	if evs := events(t, s, EndOf(3)); len(evs) != 4 || evs[0].Index != 4 {
		t.Fatalf("the events after the trim: %+v", evs)
	}
	if err := s.Statement("A", EndOf(2), func(Event) bool { return true }); !errors.Is(err, ErrGone) {
		t.Fatalf("a statement from before the trim: %v", err)
	}
	if err := s.TrimBelow(2); err != nil || s.From() != 4 {
		t.Fatalf("trimming below what is gone: %v, from %d", err, s.From())
	}
}
