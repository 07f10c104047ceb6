package zkcoord

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"

	"github.com/zkbank/zkbank/engine/entry"
)

// Restore errors.
var (
	// ErrLogLost: a node applied entries that ZooKeeper neither holds nor
	// says it trimmed. ZooKeeper lost its data (or bankd points at another
	// ensemble or namespace); continuing would write a second history over
	// the first. The cure is a restore (docs/deployment.md, "Disaster
	// recovery").
	ErrLogLost = errors.New("zkcoord: ZooKeeper does not hold the log this node applied")
	// ErrNotEmpty: a restore found a log in the namespace.
	ErrNotEmpty = errors.New("zkcoord: the namespace already holds a log")
)

// CheckHolds returns ErrLogLost unless the log holds entry applied or
// says it was trimmed away (a node that applied nothing needs nothing).
// The entry is read before the trim point: a trim records the point
// before it deletes, so an entry gone to a trim is never taken for lost.
func (l *Log) CheckHolds(applied uint64) error {
	if applied == 0 {
		return nil
	}
	_, err := l.get(applied)
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	below, err := l.TrimmedBelow()
	if err != nil {
		return err
	}
	if below <= applied {
		return fmt.Errorf("%w: it applied up to index %d, and ZooKeeper has no entry %d and no trim past it (log starts at %d)",
			ErrLogLost, applied, applied, below)
	}
	return nil
}

// RestoreRecord is the content of the restored znode: the head a
// restore left the log at, kept so that a later restore (from a journal
// that goes further) can move it on, and for audits.
type RestoreRecord struct {
	Index uint64 `json:"index"`
	Hash  string `json:"hash"` // hex
	Epoch uint64 `json:"epoch"`
	By    string `json:"by"` // the node whose data dir it came from
}

// RestoreResult says what a restore did.
type RestoreResult int

const (
	// Seeded: the namespace was empty and goes on after the head given.
	Seeded RestoreResult = iota
	// MovedOn: an earlier restore's head was moved to the one given, a
	// journal that goes further.
	MovedOn
	// Kept: an earlier restore's head is at or past the one given.
	Kept
)

// Restore seeds a namespace that holds no log so that the log goes on
// after head, the last entry of a surviving journal or of a backup: the
// epoch at head's (the next leader fences the one above it), the trim
// point just past head (a node behind head installs a snapshot from the
// node the restore ran on), the cluster version and the restored record.
// Until a leader fences or an entry lands, a restore from another node
// moves the head on when its journal goes further (hashAt gives its
// entry hash at an index, false when it holds none there), so a restore
// may run on every host in any order and ends at the furthest journal.
// Each step is one multi guarded by the versions it read. A namespace
// with entries, or in which a leader took a term, is refused
// (ErrNotEmpty).
func (s *Session) Restore(head Head, cv ClusterVersion, by string, hashAt func(uint64) (entry.Hash, bool)) (RestoreResult, error) {
	if head.Index == 0 {
		return 0, errors.New("zkcoord: restore: nothing to restore (index 0)")
	}
	prev, prevVersion, err := s.restored()
	if err != nil {
		return 0, err
	}
	if err := s.checkRestorable(prev); err != nil {
		return 0, err
	}
	result := Seeded
	if prev != nil {
		if result, err = movesOn(*prev, head, hashAt); err != nil || result == Kept {
			return result, err
		}
	}
	ops, err := s.restoreOps(head, cv, by, prevVersion)
	if err != nil {
		return 0, err
	}
	if _, err := s.Conn.Multi(ops...); err != nil {
		return 0, fmt.Errorf("zkcoord: restore at index %d: %w", head.Index, err)
	}
	return result, nil
}

// restored reads the restored record (nil when there is none) and its
// znode's version.
func (s *Session) restored() (*RestoreRecord, int32, error) {
	data, stat, err := s.Conn.Get(s.Path("restored"))
	if errors.Is(err, zk.ErrNoNode) {
		return nil, -1, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("zkcoord: restore: read the restored record: %w", err)
	}
	var rec RestoreRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, 0, fmt.Errorf("zkcoord: restored znode holds %q: %w", data, err)
	}
	return &rec, stat.Version, nil
}

// checkRestorable refuses a namespace with a log of its own: entries, a
// trim point no restore set, or a term taken since the last restore.
func (s *Session) checkRestorable(prev *RestoreRecord) error {
	last, err := s.Log(0).LastIndex()
	if err != nil {
		return fmt.Errorf("zkcoord: restore: %w", err)
	}
	if prev == nil {
		if below, err := s.Log(0).TrimmedBelow(); err != nil || below > 1 || last > 0 {
			return errors.Join(err, fmt.Errorf("%w: it goes up to index %d; restore only into an empty namespace", ErrNotEmpty, last))
		}
		return nil
	}
	data, _, err := s.Conn.Get(s.Path("epoch"))
	if err != nil {
		return fmt.Errorf("zkcoord: restore: read epoch: %w", err)
	}
	var cur LeaderRecord
	if err := json.Unmarshal(data, &cur); err != nil || cur.ID != restoreID || last != prev.Index {
		return fmt.Errorf("%w: restored at %d, and the bank has run since (epoch %d by %q, log at %d)", ErrNotEmpty, prev.Index, cur.Epoch, cur.ID, last)
	}
	return nil
}

// restoreID is the epoch record's id until the first leader after a
// restore fences.
const restoreID = "restore"

// movesOn decides whether head goes further than an earlier restore's,
// on the same chain.
func movesOn(prev RestoreRecord, head Head, hashAt func(uint64) (entry.Hash, bool)) (RestoreResult, error) {
	if head.Index < prev.Index {
		return Kept, nil
	}
	h, ok := hashAt(prev.Index)
	switch {
	case !ok:
		return 0, fmt.Errorf("zkcoord: restore: the log was restored at %d by %s, and this journal no longer holds that entry to show it goes on from it", prev.Index, prev.By)
	case h.String() != prev.Hash:
		return 0, fmt.Errorf("%w: entry %d here is not the one %s restored", ErrDiverged, prev.Index, prev.By)
	case head.Index == prev.Index:
		return Kept, nil
	}
	return MovedOn, nil
}

// restoreOps are the writes of a restore: epoch, trim point, version and
// the restored record.
func (s *Session) restoreOps(head Head, cv ClusterVersion, by string, prevVersion int32) ([]any, error) {
	_, opsStat, err := s.Conn.Get(s.Path("operations"))
	if err != nil {
		return nil, fmt.Errorf("zkcoord: restore: read trim point: %w", err)
	}
	epochOp, err := s.restoreEpoch(head.Epoch)
	if err != nil {
		return nil, err
	}
	var trim [8]byte
	binary.BigEndian.PutUint64(trim[:], head.Index+1)
	rec := mustJSON(RestoreRecord{Index: head.Index, Hash: head.Hash.String(), Epoch: head.Epoch, By: by})
	ops := []any{epochOp, &zk.SetDataRequest{Path: s.Path("operations"), Data: trim[:], Version: opsStat.Version}}
	if prevVersion < 0 {
		ops = append(ops, &zk.CreateRequest{Path: s.Path("restored"), Data: rec, Acl: s.acl})
	} else {
		ops = append(ops, &zk.SetDataRequest{Path: s.Path("restored"), Data: rec, Version: prevVersion})
	}
	versionOp, err := s.restoreVersion(cv)
	if err != nil {
		return nil, err
	}
	if versionOp != nil {
		ops = append(ops, versionOp)
	}
	return ops, nil
}

// restoreEpoch sets the epoch znode to epoch unless it is above already
// (a node that led on the empty ensemble before it halted moved it).
func (s *Session) restoreEpoch(epoch uint64) (any, error) {
	p := s.Path("epoch")
	rec := LeaderRecord{Epoch: epoch, ID: restoreID}
	data, stat, err := s.Conn.Get(p)
	if errors.Is(err, zk.ErrNoNode) {
		return &zk.CreateRequest{Path: p, Data: mustJSON(rec), Acl: s.acl}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("zkcoord: restore: read epoch: %w", err)
	}
	var cur LeaderRecord
	if err := json.Unmarshal(data, &cur); err != nil {
		return nil, fmt.Errorf("zkcoord: restore: epoch znode holds %q: %w", data, err)
	}
	rec.Epoch = max(rec.Epoch, cur.Epoch)
	return &zk.SetDataRequest{Path: p, Data: mustJSON(rec), Version: stat.Version}, nil
}

// restoreVersion publishes cv, or nothing when the version znode is
// there already at it or above.
func (s *Session) restoreVersion(cv ClusterVersion) (any, error) {
	p := s.Path("version")
	data, stat, err := s.Conn.Get(p)
	if errors.Is(err, zk.ErrNoNode) {
		return &zk.CreateRequest{Path: p, Data: mustJSON(cv), Acl: s.acl}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("zkcoord: restore: read cluster version: %w", err)
	}
	var cur ClusterVersion
	if json.Unmarshal(data, &cur) == nil && !cv.newerThan(cur) {
		return nil, nil
	}
	return &zk.SetDataRequest{Path: p, Data: mustJSON(cv), Version: stat.Version}, nil
}
