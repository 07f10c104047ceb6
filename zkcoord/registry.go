package zkcoord

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"
)

// RegistryRecord is a member the cluster expects, live or not: what
// members/ cannot say once a node is gone. A node writes its own record at
// every start; only an operator removes one (Deregister).
type RegistryRecord struct {
	ID    string `json:"id"`
	Addr  string `json:"addr"`
	Reads uint32 `json:"reads"` // the newest body version its binary reads
	// Keys are the ids of the data keys it holds (a sealed log): a leader
	// seals with the newest key every expected member holds.
	Keys []uint32 `json:"keys,omitempty"`
	// Serials are the certificates it has run with, oldest first (at most
	// SerialsKept): removing the member revokes them all.
	Serials []string `json:"serials,omitempty"`
}

// SerialsKept bounds a registry record's certificate serials.
const SerialsKept = 16

// WithSerial is rec with serial added last (once; the oldest dropped past
// SerialsKept).
func (rec RegistryRecord) WithSerial(serial string) RegistryRecord {
	if serial == "" {
		return rec
	}
	out := make([]string, 0, len(rec.Serials)+1)
	for _, s := range rec.Serials {
		if s != serial {
			out = append(out, s)
		}
	}
	out = append(out, serial)
	rec.Serials = out[max(0, len(out)-SerialsKept):]
	return rec
}

// Register writes rec under registry/, creating or replacing it.
func (s *Session) Register(rec RegistryRecord) error {
	if rec.ID == "" {
		return errors.New("zkcoord: register: empty id")
	}
	p := s.Path("registry", rec.ID)
	data := mustJSON(rec)
	_, err := s.Conn.Create(p, data, 0, s.acl)
	if errors.Is(err, zk.ErrNodeExists) {
		_, err = s.Conn.Set(p, data, -1)
	}
	if err != nil {
		return fmt.Errorf("zkcoord: register %s: %w", rec.ID, err)
	}
	return nil
}

// ErrNotRegistered: Deregister found no such member.
var ErrNotRegistered = errors.New("zkcoord: no such member in the registry")

// Deregister removes a member from the registry: the cluster no longer
// expects it.
func (s *Session) Deregister(id string) error {
	err := s.Conn.Delete(s.Path("registry", id), -1)
	if errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("deregister %s: %w", id, ErrNotRegistered)
	}
	if err != nil {
		return fmt.Errorf("zkcoord: deregister %s: %w", id, err)
	}
	return nil
}

// Registry reads every expected member, ordered by id.
func (s *Session) Registry() ([]RegistryRecord, error) {
	names, _, err := s.Conn.Children(s.Path("registry"))
	if err != nil {
		return nil, fmt.Errorf("zkcoord: list registry: %w", err)
	}
	return readJSON[RegistryRecord](s, "registry", names)
}

// ClusterVersion is the log's body version, as the leader publishes it
// before it writes the first entry of that version (Since 0), and again
// once that entry is applied: a node whose binary reads less refuses to
// start. The log itself is the record; this is its summary for the
// start-up check.
type ClusterVersion struct {
	BodyVersion uint32 `json:"body_version"`
	Since       uint64 `json:"since"` // index of its first entry; 0 until known
}

// ClusterVersion reads the published version; version 1 since the start
// when none was published.
func (s *Session) ClusterVersion() (ClusterVersion, error) {
	data, _, err := s.Conn.Get(s.Path("version"))
	if errors.Is(err, zk.ErrNoNode) {
		return ClusterVersion{BodyVersion: 1}, nil
	}
	if err != nil {
		return ClusterVersion{}, fmt.Errorf("zkcoord: read cluster version: %w", err)
	}
	var cv ClusterVersion
	if err := json.Unmarshal(data, &cv); err != nil {
		return ClusterVersion{}, fmt.Errorf("zkcoord: version znode holds %q: %w", data, err)
	}
	return cv, nil
}

// PublishClusterVersion records cv unless a newer version is there, or
// the same one with its first index known: it never goes down.
func (s *Session) PublishClusterVersion(cv ClusterVersion) error {
	p := s.Path("version")
	for {
		data, stat, err := s.Conn.Get(p)
		if errors.Is(err, zk.ErrNoNode) {
			_, err = s.Conn.Create(p, mustJSON(cv), 0, s.acl)
			if errors.Is(err, zk.ErrNodeExists) {
				continue
			}
			return wrapPublish(err)
		}
		if err != nil {
			return wrapPublish(err)
		}
		var cur ClusterVersion
		if json.Unmarshal(data, &cur) == nil && !cv.newerThan(cur) {
			return nil
		}
		_, err = s.Conn.Set(p, mustJSON(cv), stat.Version)
		if !errors.Is(err, zk.ErrBadVersion) {
			return wrapPublish(err)
		}
	}
}

// newerThan: a higher version, or the same one with its first index now
// known.
func (cv ClusterVersion) newerThan(cur ClusterVersion) bool {
	return cv.BodyVersion > cur.BodyVersion || (cv.BodyVersion == cur.BodyVersion && cur.Since == 0 && cv.Since != 0)
}

func wrapPublish(err error) error {
	if err != nil {
		return fmt.Errorf("zkcoord: publish cluster version: %w", err)
	}
	return nil
}
