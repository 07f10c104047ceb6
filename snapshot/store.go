package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/zkbank/zkbank/engine"
)

const (
	filePrefix = "snap-"
	fileSuffix = ".zks"
	tmpSuffix  = ".tmp"
)

// Store is a directory of snapshot files named snap-<index>.zks.
type Store struct {
	dir    string
	retain int
	sign   func(checksum engine.Hash) ([]byte, error)
}

// SignWith makes the store sign every snapshot it writes (format 2):
// sign returns the signature block over the file's checksum (package
// seal). Snapshots received from a peer keep their writer's.
func (s *Store) SignWith(sign func(checksum engine.Hash) ([]byte, error)) { s.sign = sign }

// Info describes one snapshot file.
type Info struct {
	Path  string
	Index uint64
	Size  int64
}

// NewStore opens (creating if needed) a snapshot directory that keeps the
// newest retain snapshots (default 3 when retain < 1). Leftover temporary
// files from a crash are removed.
func NewStore(dir string, retain int) (*Store, error) {
	if retain < 1 {
		retain = 3
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("snapshot: create %s: %w", dir, err)
	}
	tmps, err := filepath.Glob(filepath.Join(dir, "*"+tmpSuffix))
	if err != nil {
		return nil, fmt.Errorf("snapshot: list %s: %w", dir, err)
	}
	for _, p := range tmps {
		if err := os.Remove(p); err != nil {
			return nil, fmt.Errorf("snapshot: remove leftover %s: %w", p, err)
		}
	}
	return &Store{dir: dir, retain: retain}, nil
}

// Save writes a snapshot of e, which must not change meanwhile (a tool's
// or a test's engine; a node snapshots a Capture with Begin and Commit).
func (s *Store) Save(e State, nowMs int64) (Info, error) {
	p, err := s.Begin(e, nowMs)
	if err != nil {
		return Info{}, err
	}
	return p.Commit()
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// PathFor is the file name of the snapshot at index.
func (s *Store) PathFor(index uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%s%020d%s", filePrefix, index, fileSuffix))
}

// install renames a complete, synced temporary file into place, syncs the
// directory and prunes.
func (s *Store) install(tmp string, index uint64, size int64) (Info, error) {
	final := s.PathFor(index)
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return Info{}, fmt.Errorf("snapshot: rename %s: %w", tmp, err)
	}
	if err := syncDir(s.dir); err != nil {
		return Info{}, err
	}
	if err := s.Prune(); err != nil {
		return Info{}, err
	}
	return Info{Path: final, Index: index, Size: size}, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("snapshot: open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("snapshot: sync dir %s: %w", dir, err)
	}
	return nil
}

// List returns the snapshot files, newest (highest index) first. It does
// not verify them.
func (s *Store) List() ([]Info, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("snapshot: list %s: %w", s.dir, err)
	}
	var out []Info
	for _, de := range entries {
		index, ok := parseName(de.Name())
		if !ok || !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			return nil, fmt.Errorf("snapshot: stat %s: %w", de.Name(), err)
		}
		out = append(out, Info{Path: filepath.Join(s.dir, de.Name()), Index: index, Size: fi.Size()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index > out[j].Index })
	return out, nil
}

func parseName(name string) (uint64, bool) {
	if !strings.HasPrefix(name, filePrefix) || !strings.HasSuffix(name, fileSuffix) {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, filePrefix), fileSuffix), 10, 64)
	return n, err == nil
}

// Prune deletes all but the newest retain snapshots.
func (s *Store) Prune() error {
	list, err := s.List()
	if err != nil {
		return err
	}
	for i := s.retain; i < len(list); i++ {
		if err := os.Remove(list[i].Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("snapshot: prune %s: %w", list[i].Path, err)
		}
	}
	return nil
}
