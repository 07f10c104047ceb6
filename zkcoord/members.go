package zkcoord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// MemberRecord is what a node publishes about itself.
type MemberRecord struct {
	ID       string `json:"id"`
	Addr     string `json:"addr"`
	Applied  uint64 `json:"applied"`  // last applied log index
	Snapshot uint64 `json:"snapshot"` // index of its newest snapshot
}

// Member is this node's ephemeral registration under members/. It is
// re-created after a session expiry, and progress updates are written at
// most once per interval.
type Member struct {
	s        *Session
	path     string
	interval time.Duration

	mu    sync.Mutex
	rec   MemberRecord
	dirty chan struct{}
}

// Join registers rec.ID and keeps the registration alive until ctx ends.
// A stale znode with the same id (this node before a restart) is replaced.
func (s *Session) Join(ctx context.Context, rec MemberRecord, interval time.Duration) (*Member, error) {
	if rec.ID == "" {
		return nil, errors.New("zkcoord: member id is empty")
	}
	if interval <= 0 {
		interval = time.Second
	}
	m := &Member{s: s, path: s.Path("members", rec.ID), interval: interval, rec: rec, dirty: make(chan struct{}, 1)}
	if err := m.register(); err != nil {
		return nil, err
	}
	go m.run(ctx)
	return m, nil
}

// Update records new progress; it reaches ZooKeeper within the interval.
func (m *Member) Update(applied, snapshot uint64) {
	m.mu.Lock()
	m.rec.Applied, m.rec.Snapshot = applied, snapshot
	m.mu.Unlock()
	select {
	case m.dirty <- struct{}{}:
	default:
	}
}

func (m *Member) record() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return mustJSON(m.rec)
}

func (m *Member) register() error {
	data := m.record()
	_, err := m.s.Conn.Create(m.path, data, zk.FlagEphemeral, m.s.acl)
	if errors.Is(err, zk.ErrNodeExists) {
		if _, stat, gerr := m.s.Conn.Get(m.path); gerr == nil && stat.EphemeralOwner == m.s.Conn.SessionID() {
			return nil // ours already
		}
		if err := m.s.Conn.Delete(m.path, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return fmt.Errorf("zkcoord: replace stale member %s: %w", m.path, err)
		}
		_, err = m.s.Conn.Create(m.path, data, zk.FlagEphemeral, m.s.acl)
	}
	if err != nil {
		return fmt.Errorf("zkcoord: join as %s: %w", m.path, err)
	}
	return nil
}

func (m *Member) run(ctx context.Context) {
	events := m.s.Subscribe()
	defer m.s.unsubscribe(events)
	defer m.s.Conn.Delete(m.path, -1) // leave at once on a clean stop
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-events:
		case <-m.dirty:
		}
		if !m.s.Connected() {
			continue
		}
		if err := m.flush(); err != nil {
			m.s.cfg.Logger.Warn("membership update failed; will retry", "err", err)
			select { // try again after the interval
			case m.dirty <- struct{}{}:
			default:
			}
		}
		select { // rate limit
		case <-time.After(m.interval):
		case <-ctx.Done():
		}
	}
}

// flush writes the record, re-creating the znode if the session that owned
// it expired.
func (m *Member) flush() error {
	_, err := m.s.Conn.Set(m.path, m.record(), -1)
	if errors.Is(err, zk.ErrNoNode) {
		return m.register()
	}
	if err == nil {
		if _, stat, gerr := m.s.Conn.Exists(m.path); gerr == nil && stat.EphemeralOwner != m.s.Conn.SessionID() {
			return m.register()
		}
	}
	return err
}

// Members reads every member record, ordered by id.
func (s *Session) Members() ([]MemberRecord, error) {
	names, _, err := s.Conn.Children(s.Path("members"))
	if err != nil {
		return nil, fmt.Errorf("zkcoord: list members: %w", err)
	}
	return s.readMembers(names)
}

func (s *Session) readMembers(names []string) ([]MemberRecord, error) {
	return readJSON[MemberRecord](s, "members", names)
}

// readJSON reads the JSON records dir/<name> for names, ordered by name,
// skipping those gone meanwhile.
func readJSON[T any](s *Session, dir string, names []string) ([]T, error) {
	sort.Strings(names)
	out := make([]T, 0, len(names))
	for _, n := range names {
		data, _, err := s.Conn.Get(s.Path(dir, n))
		if errors.Is(err, zk.ErrNoNode) {
			continue // gone meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("zkcoord: read %s/%s: %w", dir, n, err)
		}
		var rec T
		if err := json.Unmarshal(data, &rec); err != nil {
			return nil, fmt.Errorf("zkcoord: %s/%s holds %q: %w", dir, n, data, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

// WatchMembers sends the member list whenever a member joins or leaves (and
// once at the start), until ctx ends.
func (s *Session) WatchMembers(ctx context.Context) <-chan []MemberRecord {
	out := make(chan []MemberRecord, 1)
	go func() {
		defer close(out)
		events := s.Subscribe()
		defer s.unsubscribe(events)
		for ctx.Err() == nil {
			names, _, watch, err := s.Conn.ChildrenW(s.Path("members"))
			var list []MemberRecord
			if err == nil {
				list, err = s.readMembers(names)
			}
			if err != nil {
				select {
				case <-events:
				case <-time.After(s.cfg.SessionTimeout / 4):
				case <-ctx.Done():
				}
				continue
			}
			select {
			case out <- list:
			case <-ctx.Done():
				return
			}
			select {
			case <-watch:
			case <-ctx.Done():
			}
		}
	}()
	return out
}
