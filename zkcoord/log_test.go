package zkcoord

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkbank/zkbank/engine/entry"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// lead makes s the leader and returns a term, the log and its head.
func lead(t *testing.T, ctx context.Context, s *Session, segSize uint64) (*Term, *Log, Head) {
	t.Helper()
	_, term := awaitTerm(t, 10*time.Second, s.Campaign(ctx, Candidate{ID: "leader"}))
	log := s.Log(segSize)
	head, err := log.Recover(ctx, Head{})
	if err != nil {
		t.Fatal(err)
	}
	return term, log, head
}

// logFixture is a leader with entries already in its log.
type logFixture struct {
	ctx     context.Context
	s       *Session
	term    *Term
	log     *Log
	written []*entry.Envelope
}

// newLogFixture starts an ensemble of servers, makes one session the
// leader of a log with segments of seg entries, and appends count entries.
func newLogFixture(t *testing.T, servers int, seg uint64, count int) *logFixture {
	t.Helper()
	ens := zktest.Shared(t, servers)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := &logFixture{ctx: ctx, s: connect(t, ens, nil)}
	var head Head
	f.term, f.log, head = lead(t, ctx, f.s, seg)
	f.written = appendAll(t, f.log.NewAppender(f.term, head, 4), count, "e")
	return f
}

// TestTailersAgreeAcrossSegmentsAndAServerRestart: three tailers on their
// own sessions read every entry in order while the leader appends through
// many small segments, and one ZooKeeper server is stopped and restarted
// in the middle.
func TestTailersAgreeAcrossSegmentsAndAServerRestart(t *testing.T) {
	ens := zktest.Start(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const seg, total = 7, 120
	leader := connect(t, ens, nil)
	term, log, head := lead(t, ctx, leader, seg)
	var tailers []*Tailer
	for i := 0; i < 3; i++ {
		tailers = append(tailers, connect(t, ens, nil).Log(seg).Tail(ctx, Head{}, 200*time.Millisecond))
	}
	a := log.NewAppender(term, head, 8)
	written := appendAll(t, a, total/2, "first")
	// Stop a ZooKeeper follower the leader's session is not using: losing
	// its own server, or the quorum's leader (every server drops its
	// clients while the quorum re-elects), would rightly end the term.
	// Tailers connected to it must reconnect and carry on.
	var victim *zktest.Server
	for _, srv := range ens.Servers {
		if srv.Addr() != leader.Conn.Server() && srv.Mode() == "follower" {
			victim = srv
		}
	}
	if victim == nil {
		t.Fatal("no ZooKeeper follower free of the leader's session")
	}
	victim.Stop()
	written = append(written, appendAll(t, a, total/4, "second")...)
	victim.Start(t)
	victim.WaitReady(t)
	written = append(written, appendAll(t, a, total/4, "third")...)

	for i, tl := range tailers {
		for _, want := range written {
			select {
			case got, ok := <-tl.Entries():
				if !ok {
					t.Fatalf("tailer %d stopped at %d: %v", i, want.Index, tl.Err())
				}
				if got.Index != want.Index || got.Hash() != want.Hash() {
					t.Fatalf("tailer %d: got entry %d, want %d", i, got.Index, want.Index)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("tailer %d stuck before %d", i, want.Index)
			}
		}
	}
	if n, err := log.LastIndex(); err != nil || n != total {
		t.Fatalf("last index %d (%v), want %d", n, err, total)
	}
}

func TestTrim(t *testing.T) {
	f := newLogFixture(t, 3, 10, 35)
	ctx, log, written := f.ctx, f.log, f.written
	point, err := log.TrimBelow(25)
	if err != nil {
		t.Fatal(err)
	}
	if point != 25 {
		t.Fatalf("trim point %d, want 25", point)
	}
	for _, i := range []uint64{1, 20, 21, 24} {
		if _, err := log.Read(i); !errors.Is(err, ErrTrimmed) {
			t.Fatalf("read trimmed entry %d: %v", i, err)
		}
		if _, err := log.get(i); !errors.Is(err, ErrNotFound) {
			t.Fatalf("entry %d still in ZooKeeper: %v", i, err)
		}
	}
	if e, err := log.Read(25); err != nil || e.Hash() != written[24].Hash() {
		t.Fatalf("read 25: %v", err)
	}
	tl := log.Tail(ctx, Head{Index: 5, Hash: written[4].Hash()}, 100*time.Millisecond)
	for range tl.Entries() {
		t.Fatal("tailer delivered a trimmed entry")
	}
	if !errors.Is(tl.Err(), ErrTrimmed) {
		t.Fatalf("tailer ended with %v, want ErrTrimmed", tl.Err())
	}
	if n, _ := log.LastIndex(); n != 35 {
		t.Fatalf("last index %d after trim", n)
	}
	if point, err := log.TrimBelow(22); err != nil || point != 25 {
		t.Fatalf("trim below 22 after 25: point %d, %v; want 25", point, err)
	}
}

// TestTrimAroundMissingEntries: entries already deleted (a deposed
// leader's trim) do not stop a trim, and a segment emptied by partial
// trims goes whole.
func TestTrimAroundMissingEntries(t *testing.T) {
	f := newLogFixture(t, 1, 10, 35)
	log := f.log
	if err := f.s.Conn.Delete(log.EntryPath(27), -1); err != nil {
		t.Fatal(err)
	}
	if _, err := log.TrimBelow(29); err != nil {
		t.Fatal(err)
	}
	if e, err := log.Read(29); err != nil || e.Hash() != f.written[28].Hash() {
		t.Fatalf("read 29: %v", err)
	}
	if _, err := log.TrimBelow(33); err != nil {
		t.Fatal(err)
	}
	segs, err := log.segments()
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 1 || segs[0] != 3 {
		t.Fatalf("segments after trimming below 33: %v, want [3]", segs)
	}
	for i := uint64(31); i <= 35; i++ {
		if _, err := log.get(i); errors.Is(err, ErrNotFound) != (i < 33) {
			t.Fatalf("entry %d after trimming below 33: %v", i, err)
		}
	}
}

// TestRecoverDeletesOrphansPastAHole: an old leader's pipelined appends can
// reach ZooKeeper out of order, leaving entry i+2 without i+1 when it is cut
// off. The next leader's Recover stops at the hole and deletes the orphan,
// so its own entry i+1 chains and no tailer ever sees the orphan.
func TestRecoverDeletesOrphansPastAHole(t *testing.T) {
	f := newLogFixture(t, 3, 10, 3)
	ctx, s, term, log, written := f.ctx, f.s, f.term, f.log, f.written
	orphan := envelope(t, 5, term.Epoch, entry.Hash{1}, "orphan")
	if _, err := s.Conn.Create(log.EntryPath(5), orphan.Raw(), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	got, err := log.Recover(ctx, Head{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Index != 3 || got.Hash != written[2].Hash() {
		t.Fatalf("recovered head %d", got.Index)
	}
	if _, err := log.Read(5); !errors.Is(err, ErrNotFound) {
		t.Fatalf("orphan still there: %v", err)
	}
	more := appendAll(t, log.NewAppender(term, got, 4), 3, "after")
	if more[0].Index != 4 || more[2].Index != 6 {
		t.Fatalf("appended %d..%d", more[0].Index, more[2].Index)
	}
}

// TestTailerRefusesADivergentEntry: an entry that does not chain is an
// error, never delivered.
func TestTailerRefusesADivergentEntry(t *testing.T) {
	f := newLogFixture(t, 1, 10, 2)
	tl := f.log.Tail(f.ctx, Head{Index: 1, Hash: entry.Hash{9}}, 100*time.Millisecond)
	for e := range tl.Entries() {
		t.Fatalf("delivered %d", e.Index)
	}
	if !errors.Is(tl.Err(), ErrDiverged) {
		t.Fatalf("err %v, want ErrDiverged", tl.Err())
	}
}
