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

func TestElectionFailover(t *testing.T) {
	ens := zktest.Shared(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sessions []*Session
	var els []*Election
	for _, id := range []string{"a", "b", "c"} {
		s := connect(t, ens, nil)
		sessions = append(sessions, s)
		els = append(els, s.Campaign(ctx, Candidate{ID: id, Addr: id + ":8080"}))
	}
	first, term := awaitTerm(t, 10*time.Second, els...)
	for i, e := range els {
		if i != first && e.Current() != nil {
			t.Fatalf("%d and %d both lead", first, i)
		}
	}
	for _, e := range els { // every watcher learns the new leader record
		zktest.Eventually(t, 10*time.Second, "the leader record", func() bool {
			rec, ok := e.Leader()
			return ok && rec.Epoch == term.Epoch && rec.ID == []string{"a", "b", "c"}[first]
		})
	}

	// Kill the leader's session: its term ends at once and the next
	// candidate leads within the session timeout.
	start := time.Now()
	sessions[first].Close()
	<-term.Done()
	rest := append(append([]*Election{}, els[:first]...), els[first+1:]...)
	_, next := awaitTerm(t, testTimeout, rest...)
	t.Logf("failover took %v", time.Since(start))
	if next.Epoch <= term.Epoch {
		t.Fatalf("new epoch %d not above %d", next.Epoch, term.Epoch)
	}
}

// TestFenceStopsACutOffLeader partitions the leader from ZooKeeper past its
// session timeout, lets another node take over, heals the partition, and
// shows that nothing the old leader appends with its old term lands, even
// if it ignored losing leadership. It first shows the hazard is real: an
// unfenced create from the old leader's connection does land.
func TestFenceStopsACutOffLeader(t *testing.T) {
	ens := zktest.Shared(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cutter := &zktest.Cutter{}
	old := connect(t, ens, cutter)
	oldEl := old.Campaign(ctx, Candidate{ID: "old"})
	_, oldTerm := awaitTerm(t, 10*time.Second, oldEl)
	log := old.Log(5)
	head, err := log.Recover(ctx, Head{})
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, log.NewAppender(oldTerm, head, 4), 3, "old")

	other := connect(t, ens, nil)
	otherEl := other.Campaign(ctx, Candidate{ID: "new"})

	cutter.Cut()
	select {
	case <-oldTerm.Done():
		t.Logf("old leader stepped down: %v", oldTerm.Err())
	case <-time.After(testTimeout * 2):
		t.Fatal("cut-off leader did not step down")
	}
	_, newTerm := awaitTerm(t, testTimeout*3, otherEl)
	newLog := other.Log(5)
	newHead, err := newLog.Recover(ctx, Head{})
	if err != nil || newHead.Index != 3 {
		t.Fatalf("new leader recovered head %d: %v", newHead.Index, err)
	}
	appendAll(t, newLog.NewAppender(newTerm, newHead, 4), 2, "new")

	cutter.Resume()
	waitConnected(t, old)
	// The hazard: go-zookeeper reopened a session on the same Conn, so an
	// unfenced write from the old leader succeeds.
	if _, err := old.Conn.Create(old.Path("operations", "unfenced"), nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("unfenced create from the old connection: %v", err)
	}
	// The fence: a leader that ignored its lost term appends with its old
	// epoch version and nothing lands.
	stale := &Term{Epoch: oldTerm.Epoch, epochVersion: oldTerm.epochVersion}
	stale.ctx, stale.cancel = context.WithCancelCause(context.Background())
	a := log.NewAppender(stale, Head{Index: 3, Hash: head.Hash}, 4)
	p, err := a.Append(ctx, entry.BodyV1, body(2, "zombie"), 0)
	if err == nil {
		<-p.Done()
		err = p.Err()
	}
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("zombie append: %v, want ErrFenced", err)
	}
	z := log.NewAppender(stale, Head{Index: 5}, 4) // past the new leader's entries
	if p, err := z.Append(ctx, entry.BodyV1, body(2, "zombie2"), 0); err == nil {
		<-p.Done()
		if !errors.Is(p.Err(), ErrFenced) {
			t.Fatalf("zombie append past the head: %v", p.Err())
		}
	}
	for i := uint64(1); i <= 5; i++ {
		e, err := newLog.Read(i)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]uint64{true: oldTerm.Epoch, false: newTerm.Epoch}[i <= 3]; e.Epoch != want {
			t.Fatalf("entry %d has epoch %d, want %d", i, e.Epoch, want)
		}
	}
	if _, err := newLog.Read(6); !errors.Is(err, ErrNotFound) {
		t.Fatalf("entry 6 exists: %v", err)
	}
	// Linearizable reads ask for the same proof: only the new term has it.
	if err := otherEl.Confirm(newTerm); err != nil {
		t.Fatalf("new leader cannot confirm its term: %v", err)
	}
	stale2 := &Term{Epoch: oldTerm.Epoch, epochVersion: oldTerm.epochVersion}
	stale2.ctx, stale2.cancel = context.WithCancelCause(context.Background())
	if err := oldEl.Confirm(stale2); !errors.Is(err, ErrFenced) {
		t.Fatalf("old leader confirmed a stale term: %v", err)
	}
}

func waitConnected(t *testing.T, s *Session) {
	t.Helper()
	zktest.Eventually(t, 20*time.Second, "the session back", s.Connected)
}

func TestMembership(t *testing.T) {
	ens := zktest.Shared(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watcher := connect(t, ens, nil)
	updates := watcher.WatchMembers(ctx)
	cutter := &zktest.Cutter{}
	victim := connect(t, ens, cutter)
	m, err := victim.Join(ctx, MemberRecord{ID: "n1", Addr: "127.0.0.1:1"}, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	awaitMembers(t, updates, func(l []MemberRecord) bool { return len(l) == 1 && l[0].ID == "n1" })
	m.Update(42, 40)
	zktest.Eventually(t, 10*time.Second, "progress published", func() bool {
		list, err := watcher.Members()
		return err == nil && len(list) == 1 && list[0].Applied == 42 && list[0].Snapshot == 40
	})
	// "Kill" the member: it stops talking without closing its session.
	start := time.Now()
	cutter.Cut()
	awaitMembers(t, updates, func(l []MemberRecord) bool { return len(l) == 0 })
	t.Logf("member gone after %v (session timeout %v)", time.Since(start), testTimeout)
	// Healed, it comes back by itself with a new session.
	cutter.Resume()
	awaitMembers(t, updates, func(l []MemberRecord) bool { return len(l) == 1 })
}

func awaitMembers(t *testing.T, ch <-chan []MemberRecord, ok func([]MemberRecord) bool) {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case l := <-ch:
			if ok(l) {
				return
			}
		case <-timeout:
			t.Fatal("membership did not reach the expected state")
		}
	}
}
