// Package seal makes the operations log one that only a leader can write
// and only the bank's nodes can read. A sealed entry (body version 3 and
// later, envelope layout 3) has its body encrypted with a cluster data key
// (AES-256-GCM; the key's id in the envelope) and its envelope signed by
// the leader of its epoch. The first sealed entry of each epoch, its term
// entry, carries the leader's node certificate and the cluster's id; the
// later ones carry only a signature by the same key.
//
// Verification (Cursor) is a pure function of the entry's bytes, the
// chain before it (the signer of the current epoch and the revocations,
// as the log has them) and the trust the caller brings (the CA bundle,
// the cluster's id): no clock (a certificate is judged at the entry's own
// time), no file, no binary version. Every node and every auditor reaches
// the same verdict. docs/format.md defines what is signed.
package seal

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// KeyBytes is the size of a data key (AES-256).
const KeyBytes = 32

// Keyring is the data keys a node holds, by id. It seals with the highest
// id and opens with any.
type Keyring struct {
	keys map[uint32][KeyBytes]byte
}

// NewKeyring holds the given keys.
func NewKeyring(keys map[uint32][KeyBytes]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("seal: no data keys")
	}
	if _, zero := keys[0]; zero {
		return nil, errors.New("seal: data key ids start at 1")
	}
	return &Keyring{keys: keys}, nil
}

// Current is the id of the key new entries are sealed with: the highest.
func (k *Keyring) Current() uint32 { return slices.Max(k.IDs()) }

// Common is the newest key id that this ring and every list of ids in
// others hold; this ring's newest when there is none.
func (k *Keyring) Common(others [][]uint32) uint32 {
	best := uint32(0)
	for _, id := range k.IDs() {
		if all(others, id) {
			best = id
		}
	}
	if best == 0 {
		return k.Current()
	}
	return best
}

func all(lists [][]uint32, id uint32) bool {
	for _, l := range lists {
		if !slices.Contains(l, id) {
			return false
		}
	}
	return true
}

// IDs are the ids of the keys held, ascending.
func (k *Keyring) IDs() []uint32 {
	ids := make([]uint32, 0, len(k.keys))
	for id := range k.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (k *Keyring) key(id uint32) ([KeyBytes]byte, bool) {
	key, ok := k.keys[id]
	return key, ok
}

// ReadKeys reads a key file: one key a line, "<id> <64 hex digits>", ids
// from 1; blank lines and lines starting with # are skipped. The file
// must be its owner's alone. Errors name the line, never a key.
func ReadKeys(path string) (*Keyring, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("seal: data keys: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("seal: data keys %s may be read by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("seal: data keys: %w", err)
	}
	defer f.Close()
	keys := map[uint32][KeyBytes]byte{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		id, key, err := parseKeyLine(text)
		if err != nil {
			return nil, fmt.Errorf("seal: data keys %s line %d: %w", path, line, err)
		}
		if _, dup := keys[id]; dup {
			return nil, fmt.Errorf("seal: data keys %s line %d: key id %d twice", path, line, id)
		}
		keys[id] = key
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("seal: data keys %s: %w", path, err)
	}
	kr, err := NewKeyring(keys)
	if err != nil {
		return nil, fmt.Errorf("%w in %s", err, path)
	}
	return kr, nil
}

func parseKeyLine(text string) (uint32, [KeyBytes]byte, error) {
	var key [KeyBytes]byte
	idText, hexText, ok := strings.Cut(text, " ")
	if !ok {
		return 0, key, errors.New(`want "<id> <64 hex digits>"`)
	}
	id, err := strconv.ParseUint(idText, 10, 32)
	if err != nil || id == 0 {
		return 0, key, fmt.Errorf("key id %q: want 1 to %d", idText, uint32(1<<32-1))
	}
	b, err := hex.DecodeString(strings.TrimSpace(hexText))
	if err != nil || len(b) != KeyBytes {
		return 0, key, fmt.Errorf("key %d: want %d hex digits", id, 2*KeyBytes)
	}
	copy(key[:], b)
	return uint32(id), key, nil
}

// NewKeyLine is a fresh random key with the given id, as a key file line.
func NewKeyLine(id uint32) (string, error) {
	var key [KeyBytes]byte
	if _, err := rand.Read(key[:]); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	return fmt.Sprintf("%d %s\n", id, hex.EncodeToString(key[:])), nil
}

// ClusterIDBytes is the size of a cluster id.
const ClusterIDBytes = 16

// NewClusterID is a fresh random cluster id, in hex.
func NewClusterID() (string, error) {
	b := make([]byte, ClusterIDBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// ParseClusterID reads a cluster id in hex.
func ParseClusterID(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ClusterIDBytes {
		return nil, fmt.Errorf("seal: cluster id %q: want %d hex digits", strings.TrimSpace(s), 2*ClusterIDBytes)
	}
	return b, nil
}
