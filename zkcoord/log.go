package zkcoord

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/go-zookeeper/zk"

	"github.com/zkbank/zkbank/engine/entry"
)

// DefaultSegmentSize is how many entries one segment znode holds: well
// under the ~61k children where listing a parent breaks Java clients.
const DefaultSegmentSize = 50_000

// Log errors.
var (
	// ErrTrimmed: the entry was deleted by a trim; a snapshot is needed.
	ErrTrimmed = errors.New("zkcoord: log entry trimmed")
	// ErrAmbiguous: an append may or may not have landed. The term ends;
	// the outcome is learned by reading the log after the next fence.
	ErrAmbiguous = errors.New("zkcoord: append outcome unknown")
	// ErrDiverged: the log holds an entry that does not continue the chain
	// the reader has. A replica must stop rather than apply it.
	ErrDiverged = errors.New("zkcoord: log diverges from the local chain")
	// ErrNotFound: the entry does not exist (yet).
	ErrNotFound = errors.New("zkcoord: log entry not found")
)

// Log is the operations log under <root>/operations.
type Log struct {
	s       *Session
	segSize uint64
}

// Log returns the operations log with the given segment size (0 means
// DefaultSegmentSize). All nodes must use the same size.
func (s *Session) Log(segSize uint64) *Log {
	if segSize == 0 {
		segSize = DefaultSegmentSize
	}
	return &Log{s: s, segSize: segSize}
}

// Session is the session the log is read and written through.
func (l *Log) Session() *Session { return l.s }

func (l *Log) segment(index uint64) uint64 { return (index - 1) / l.segSize }

func (l *Log) segmentPath(seg uint64) string {
	return l.s.Path("operations", fmt.Sprintf("seg-%010d", seg))
}

// EntryPath is the znode of entry index.
func (l *Log) EntryPath(index uint64) string {
	return fmt.Sprintf("%s/op-%020d", l.segmentPath(l.segment(index)), index)
}

// Read returns entry index, checking that the index inside it is the one
// its name promised.
func (l *Log) Read(index uint64) (*entry.Envelope, error) {
	e, err := l.get(index)
	if errors.Is(err, ErrNotFound) {
		if below, terr := l.TrimmedBelow(); terr == nil && index < below {
			return nil, fmt.Errorf("zkcoord: read %d: %w (log starts at %d)", index, ErrTrimmed, below)
		}
	}
	return e, err
}

// get reads entry index without asking, when it is missing, whether it
// was trimmed.
func (l *Log) get(index uint64) (*entry.Envelope, error) {
	data, _, err := l.s.Conn.Get(l.EntryPath(index))
	if errors.Is(err, zk.ErrNoNode) {
		return nil, fmt.Errorf("zkcoord: read %d: %w", index, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("zkcoord: read %d: %w", index, err)
	}
	return decodeAt(index, data)
}

func decodeAt(index uint64, data []byte) (*entry.Envelope, error) {
	e, err := entry.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("zkcoord: entry %d: %w: %w", index, ErrDiverged, err)
	}
	if e.Index != index {
		return nil, fmt.Errorf("zkcoord: znode for %d holds entry %d: %w", index, e.Index, ErrDiverged)
	}
	return e, nil
}

// TrimmedBelow is the lowest index the log still promises to hold; entries
// below it may be gone. It is kept in the data of the operations znode.
func (l *Log) TrimmedBelow() (uint64, error) {
	data, _, err := l.s.Conn.Get(l.s.Path("operations"))
	if err != nil {
		return 0, fmt.Errorf("zkcoord: read trim point: %w", err)
	}
	if len(data) != 8 {
		return 1, nil
	}
	return binary.BigEndian.Uint64(data), nil
}

// Head is the end of the log: the last entry's index, hash, epoch, body
// version and time.
type Head struct {
	Index       uint64
	Hash        entry.Hash
	Epoch       uint64
	BodyVersion uint32
	TimeMs      int64
}

// Recover is what a new leader does after its fence and before its first
// append: sync with the quorum, read forward from what it knows (from, the
// index and hash of an entry it holds) to the end of the log, checking the
// chain, and delete entries an old leader left beyond a hole (possible when
// pipelined appends reached ZooKeeper out of order before the fence). Only
// call it inside a term: the fence guarantees nobody else appends.
func (l *Log) Recover(ctx context.Context, from Head) (Head, error) {
	return l.RecoverWith(ctx, from, RecoverOptions{})
}

// RecoverOptions let a new leader clear junk at the head of the log.
type RecoverOptions struct {
	// Check, when set, judges each entry after from, in order (package
	// seal's verification). An entry it refuses with ErrJunk, or that
	// does not decode, is junk: nobody but a leader could have written a
	// good one. Any other error ends the recovery.
	Check func(*entry.Envelope) error
	// Keep is the highest index any member reported applied. Junk above
	// it is deleted with everything after it, as past a hole: nobody
	// applied it. Junk at or below it is ErrUnverifiedApplied.
	Keep uint64
}

// ErrJunk marks, from RecoverOptions.Check, an entry no leader wrote.
var ErrJunk = errors.New("zkcoord: not an entry of this log")

// ErrUnverifiedApplied: an entry that a member reported applied does not
// verify here. Deleting it could undo what that member did, so the new
// leader must halt instead.
var ErrUnverifiedApplied = errors.New("zkcoord: an entry a member applied does not verify here")

// RecoverWith is Recover that also clears junk (RecoverOptions).
func (l *Log) RecoverWith(ctx context.Context, from Head, opts RecoverOptions) (Head, error) {
	if _, err := l.s.Conn.Sync(l.s.Path("operations")); err != nil {
		return from, fmt.Errorf("zkcoord: sync before recovery: %w", err)
	}
	head := from
	for ctx.Err() == nil {
		e, err := l.Read(head.Index + 1)
		switch {
		case errors.Is(err, ErrNotFound):
			return head, l.deleteBeyond(head.Index)
		case errors.Is(err, ErrDiverged) && opts.Check != nil: // bytes that are no entry
			return head, l.clearJunk(head, opts.Keep, err)
		case err != nil:
			return head, err
		}
		if opts.Check != nil {
			if err := opts.Check(e); errors.Is(err, ErrJunk) {
				return head, l.clearJunk(head, opts.Keep, err)
			} else if err != nil {
				return head, err
			}
		}
		if e.PrevHash != head.Hash {
			return head, fmt.Errorf("zkcoord: entry %d: %w: prev_hash does not match entry %d", e.Index, ErrDiverged, head.Index)
		}
		head = Head{Index: e.Index, Hash: e.Hash(), Epoch: e.Epoch, BodyVersion: e.BodyVersion, TimeMs: e.TimeMs}
	}
	return head, ctx.Err()
}

// clearJunk deletes the entry after head and those beyond it, unless a
// member applied it.
func (l *Log) clearJunk(head Head, keep uint64, why error) error {
	index := head.Index + 1
	if index <= keep {
		return fmt.Errorf("%w: entry %d (members applied up to %d): %w", ErrUnverifiedApplied, index, keep, why)
	}
	l.s.cfg.Logger.Warn("deleting log entries that do not verify: nobody applied them", "from", index, "err", why)
	return l.deleteBeyond(head.Index)
}

// deleteBeyond removes entries above index (orphans past a hole) in the
// current and next segment; appends never run further ahead than that.
func (l *Log) deleteBeyond(index uint64) error {
	seg := l.segment(index + 1)
	for _, s := range []uint64{seg, seg + 1} {
		names, _, err := l.s.Conn.Children(l.segmentPath(s))
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return fmt.Errorf("zkcoord: list segment %d: %w", s, err)
		}
		for _, n := range names {
			i, ok := entryIndex(n)
			if !ok || i <= index {
				continue
			}
			err := l.s.Conn.Delete(l.segmentPath(s)+"/"+n, -1)
			if err != nil && !errors.Is(err, zk.ErrNoNode) {
				return fmt.Errorf("zkcoord: delete orphan %d: %w", i, err)
			}
			l.s.cfg.Logger.Warn("deleted orphan log entry past a hole", "index", i, "head", index)
		}
	}
	return nil
}

func entryIndex(name string) (uint64, bool) {
	s, ok := strings.CutPrefix(name, "op-")
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseUint(s, 10, 64)
	return i, err == nil
}

// segments lists segment numbers, ascending.
func (l *Log) segments() ([]uint64, error) {
	names, _, err := l.s.Conn.Children(l.s.Path("operations"))
	if err != nil {
		return nil, fmt.Errorf("zkcoord: list segments: %w", err)
	}
	var segs []uint64
	for _, n := range names {
		if s, ok := strings.CutPrefix(n, "seg-"); ok {
			if v, err := strconv.ParseUint(s, 10, 64); err == nil {
				segs = append(segs, v)
			}
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i] < segs[j] })
	return segs, nil
}

// LastIndex is the highest entry index present in the log (0 if none). It
// lists at most two segments. Readers use it to know how far behind they
// are; it is not a consistency point.
func (l *Log) LastIndex() (uint64, error) {
	segs, err := l.segments()
	if err != nil {
		return 0, err
	}
	for i := len(segs) - 1; i >= 0 && i >= len(segs)-2; i-- {
		names, _, err := l.s.Conn.Children(l.segmentPath(segs[i]))
		if err != nil && !errors.Is(err, zk.ErrNoNode) {
			return 0, fmt.Errorf("zkcoord: list segment %d: %w", segs[i], err)
		}
		var last uint64
		for _, n := range names {
			if v, ok := entryIndex(n); ok && v > last {
				last = v
			}
		}
		if last > 0 {
			return last, nil
		}
	}
	below, err := l.TrimmedBelow()
	if err != nil {
		return 0, err
	}
	return below - 1, nil
}

// TrimBelow deletes the entries below index, after recording index as the
// new trim point so that readers report ErrTrimmed rather than wait. It
// returns the trim point, which never goes down. Segments wholly below
// index go with one listing each; in the segment that holds index, the
// entries from the previous trim point up are deleted by name, so that
// what ZooKeeper holds does not wait for a whole segment to fill (a
// segment of big entries is gigabytes). The caller decides index: below
// its newest snapshot and below every live member's applied index.
func (l *Log) TrimBelow(index uint64) (uint64, error) {
	cur, err := l.TrimmedBelow()
	if err != nil {
		return 0, err
	}
	if index <= cur {
		return cur, nil
	}
	if err := l.setTrimPoint(index); err != nil {
		return 0, err
	}
	segs, err := l.segments()
	if err != nil {
		return 0, err
	}
	for _, s := range segs {
		if (s+1)*l.segSize < index { // last entry of s is (s+1)*segSize
			if err := l.deleteSegment(s); err != nil {
				return 0, err
			}
		}
	}
	if from := max(cur, l.segment(index)*l.segSize+1); from < index {
		if err := l.deleteEntries(from, index); err != nil {
			return 0, err
		}
	}
	return index, nil
}

// deleteEntries deletes entries from..to-1 of one segment by name, in
// multis of bounded size. An entry already gone (a deposed leader's trim
// running late) fails its multi; that batch is then deleted one by one.
// An entry left behind by a crash between the trim point and its delete
// goes with its segment.
func (l *Log) deleteEntries(from, to uint64) error {
	for first := from; first < to; first += deletesPerMulti {
		var ops []any
		for i := first; i < min(first+deletesPerMulti, to); i++ {
			ops = append(ops, &zk.DeleteRequest{Path: l.EntryPath(i), Version: -1})
		}
		if _, err := l.s.Conn.Multi(ops...); err == nil {
			continue
		}
		for _, op := range ops {
			p := op.(*zk.DeleteRequest).Path
			if err := l.s.Conn.Delete(p, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
				return fmt.Errorf("zkcoord: trim %s: %w", p, err)
			}
		}
	}
	return nil
}

// deletesPerMulti bounds one trim request.
const deletesPerMulti = 500

func (l *Log) setTrimPoint(point uint64) error {
	cur, err := l.TrimmedBelow()
	if err != nil {
		return err
	}
	if point <= cur {
		return nil
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], point)
	if _, err := l.s.Conn.Set(l.s.Path("operations"), b[:], -1); err != nil {
		return fmt.Errorf("zkcoord: set trim point %d: %w", point, err)
	}
	return nil
}

// deleteSegment deletes a segment's entries in multis of bounded size, then
// the segment.
func (l *Log) deleteSegment(seg uint64) error {
	p := l.segmentPath(seg)
	names, _, err := l.s.Conn.Children(p)
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("zkcoord: list segment %d: %w", seg, err)
	}
	for i := 0; i < len(names); i += deletesPerMulti {
		var ops []any
		for _, n := range names[i:min(i+deletesPerMulti, len(names))] {
			ops = append(ops, &zk.DeleteRequest{Path: p + "/" + n, Version: -1})
		}
		if _, err := l.s.Conn.Multi(ops...); err != nil {
			return fmt.Errorf("zkcoord: trim segment %d: %w", seg, err)
		}
	}
	if err := l.s.Conn.Delete(p, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("zkcoord: delete segment %d: %w", seg, err)
	}
	return nil
}

// Landed reports whether e is in the log: the entry at its index exists and
// has its hash. This is how an ambiguous append is resolved, by reading,
// after Recover in a new term (the fence guarantees the answer is final).
func (l *Log) Landed(e *entry.Envelope) (bool, error) {
	got, err := l.Read(e.Index)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return got.Hash() == e.Hash(), nil
}
