package zkcoord

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zkbank/zkbank/engine/entry"
)

// TestRestoreContinuesALostLog: a namespace that lost its log is told
// apart from one that trimmed it; restores seed an empty one at the
// furthest journal given, so that the next leader fences above the old
// epochs and appends right after it; a forked journal, a namespace that
// ran since or one that never lost its log are refused.
func TestRestoreContinuesALostLog(t *testing.T) {
	f := newLogFixture(t, 1, 4, 10)
	head := f.written[9]
	for _, applied := range []uint64{0, 3, 10} {
		if err := f.log.CheckHolds(applied); err != nil {
			t.Fatalf("intact log, applied %d: %v", applied, err)
		}
	}
	if _, err := f.log.TrimBelow(6); err != nil {
		t.Fatal(err)
	}
	if err := f.log.CheckHolds(3); err != nil {
		t.Fatalf("trimmed entry taken for lost: %v", err)
	}

	cfg := f.s.Config()
	cfg.Root += "-restored"
	ctx, cancel := context.WithTimeout(f.ctx, 20*time.Second)
	defer cancel()
	s, err := Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	log := s.Log(4)
	if err := log.CheckHolds(10); !errors.Is(err, ErrLogLost) {
		t.Fatalf("empty namespace, applied 10: %v, want ErrLogLost", err)
	}
	const oldEpoch = 7
	hashAt := func(i uint64) (entry.Hash, bool) {
		if i == 0 || i > uint64(len(f.written)) {
			return entry.Hash{}, false
		}
		return f.written[i-1].Hash(), true
	}
	cv := ClusterVersion{BodyVersion: 3, Since: 4}
	// Restores from three journals, in any order: one behind, the
	// furthest, one behind again; and one that forked.
	shorter := Head{Index: 8, Hash: f.written[7].Hash(), Epoch: oldEpoch}
	restored := Head{Index: head.Index, Hash: head.Hash(), Epoch: oldEpoch}
	for _, step := range []struct {
		head Head
		want RestoreResult
	}{{shorter, Seeded}, {restored, MovedOn}, {shorter, Kept}, {restored, Kept}} {
		if got, err := s.Restore(step.head, cv, "n1", hashAt); err != nil || got != step.want {
			t.Fatalf("restore at %d: %v (%v), want %v", step.head.Index, got, err, step.want)
		}
	}
	forked := func(i uint64) (entry.Hash, bool) { return entry.Hash{1}, true }
	if _, err := s.Restore(Head{Index: 12, Epoch: oldEpoch}, cv, "n2", forked); !errors.Is(err, ErrDiverged) {
		t.Fatalf("restore from a forked journal: %v, want ErrDiverged", err)
	}
	for _, applied := range []uint64{4, 10} {
		if err := log.CheckHolds(applied); err != nil {
			t.Fatalf("restored log, applied %d: %v", applied, err)
		}
	}
	if _, err := log.Read(5); !errors.Is(err, ErrTrimmed) {
		t.Fatalf("read below the restored head: %v, want ErrTrimmed", err)
	}
	if got, err := s.ClusterVersion(); err != nil || got != cv {
		t.Fatalf("cluster version %+v (%v)", got, err)
	}
	_, term := awaitTerm(t, 10*time.Second, s.Campaign(f.ctx, Candidate{ID: "next"}))
	if term.Epoch != oldEpoch+1 {
		t.Fatalf("first epoch after the restore %d, want %d", term.Epoch, oldEpoch+1)
	}
	got, err := log.Recover(f.ctx, restored)
	if err != nil || got.Index != head.Index {
		t.Fatalf("recover from the restored head: %+v, %v", got, err)
	}
	next := appendAll(t, log.NewAppender(term, got, 2), 1, "after")[0]
	if next.Index != head.Index+1 || next.PrevHash != head.Hash() || next.Epoch != oldEpoch+1 {
		t.Fatalf("first entry after the restore: index %d epoch %d, prev_hash chained %v", next.Index, next.Epoch, next.PrevHash == head.Hash())
	}
	longer := Head{Index: 20, Epoch: oldEpoch}
	if _, err := s.Restore(longer, cv, "n3", hashAt); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("restore once the bank ran again: %v, want ErrNotEmpty", err)
	}
	if _, err := f.s.Restore(longer, cv, "n3", hashAt); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("restore into a namespace that never lost its log: %v, want ErrNotEmpty", err)
	}
}
