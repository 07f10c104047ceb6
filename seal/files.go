package seal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zkbank/zkbank/certs"
)

// Files of a sealed log in a node's certificate directory.
const (
	DataKeysFile  = "data.keys"  // the data keys (mode 0600), the same on every node
	ClusterIDFile = "cluster.id" // the cluster's id, in hex
)

// InitDir gives a new cluster's directory a cluster id and a first data
// key, keeping those already there.
func InitDir(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, ClusterIDFile)); errors.Is(err, os.ErrNotExist) {
		id, err := NewClusterID()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, ClusterIDFile), []byte(id+"\n"), 0o644); err != nil {
			return fmt.Errorf("seal: %w", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, DataKeysFile)); errors.Is(err, os.ErrNotExist) {
		_, err := AddKey(dir)
		return err
	}
	return nil
}

// AddKey appends a new data key to dir's key file (made if missing), with
// the next id, and returns the id. Leaders seal with it once every
// expected member holds it (docs/security.md, key rotation).
func AddKey(dir string) (uint32, error) {
	path := filepath.Join(dir, DataKeysFile)
	next := uint32(1)
	if kr, err := ReadKeys(path); err == nil {
		next = kr.Current() + 1
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	line, err := NewKeyLine(next)
	if err != nil {
		return 0, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return 0, fmt.Errorf("seal: %w", err)
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return 0, fmt.Errorf("seal: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, fmt.Errorf("seal: %w", err)
	}
	return next, f.Close()
}

// LoadDir reads the trust a certificate directory holds, as bankctl
// certs ca lays it out: ca.crt, cluster.id and data.keys.
func LoadDir(dir string) (*Trust, error) {
	keys, err := ReadKeys(filepath.Join(dir, DataKeysFile))
	if err != nil {
		return nil, err
	}
	id, err := os.ReadFile(filepath.Join(dir, ClusterIDFile))
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	cluster, err := ParseClusterID(string(id))
	if err != nil {
		return nil, err
	}
	roots, err := certs.ReadPool(filepath.Join(dir, certs.CAFile))
	if err != nil {
		return nil, err
	}
	return &Trust{Roots: roots, Cluster: cluster, Keys: keys}, nil
}
