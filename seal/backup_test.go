package seal

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// sealed seals plain as a backup with f's trust.
func sealed(t *testing.T, f *fixture, plain []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := f.trust.SealBackup(&out)
	if err != nil {
		t.Fatal(err)
	}
	for rest := plain; len(rest) > 0; { // writes of odd sizes across chunks
		k := min(len(rest), 1+rand.IntN(100_000))
		if _, err := w.Write(rest[:k]); err != nil {
			t.Fatal(err)
		}
		rest = rest[k:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func openAll(f *fixture, b []byte) ([]byte, error) {
	r, _, err := f.trust.OpenBackup(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestABackupOpensToWhatWasSealed(t *testing.T) {
	f := newFixture(t)
	for _, size := range []int{0, 1, backupChunk, backupChunk + 1, 5*backupChunk + 77} {
		plain := make([]byte, size)
		for i := range plain {
			plain[i] = byte(rand.Uint32())
		}
		b := sealed(t, f, plain)
		if bytes.Contains(b, plain[:min(size, 64)]) && size >= 16 {
			t.Fatalf("size %d: the backup holds its plaintext", size)
		}
		if int64(len(b)) != f.trust.BackupSize(int64(size)) {
			t.Fatalf("size %d: sealed to %d bytes, BackupSize says %d", size, len(b), f.trust.BackupSize(int64(size)))
		}
		got, err := openAll(f, b)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("size %d: opened %d bytes (%v)", size, len(got), err)
		}
		r, kid, err := f.trust.OpenBackup(bytes.NewReader(b))
		if err != nil || kid != f.trust.Keys.Current() || r == nil {
			t.Fatalf("size %d: key %d (%v), want the newest, %d", size, kid, err, f.trust.Keys.Current())
		}
	}
}

// TestABackupThatWasChangedOrCutDoesNotOpen: a flipped byte anywhere, a
// file cut at a chunk boundary or inside one, two chunks swapped, another
// cluster's trust, or a missing key: never the plaintext.
func TestABackupThatWasChangedOrCutDoesNotOpen(t *testing.T) {
	f := newFixture(t)
	plain := bytes.Repeat([]byte("account "), 3*backupChunk/8)
	b := sealed(t, f, plain)
	header := len(backupMagic) + 10 + len(f.trust.Cluster) + noncePrefixSize
	chunk := 4 + backupChunk + 16
	cases := map[string][]byte{
		"flipped in the header":  flip(b, 12),
		"flipped in chunk 1":     flip(b, header+chunk+100),
		"flipped in the last":    flip(b, len(b)-1),
		"cut after chunk 2":      b[:header+2*chunk],
		"cut inside chunk 1":     b[:header+chunk+10],
		"chunks 0 and 1 swapped": swap(b, header, chunk),
	}
	for name, c := range cases {
		if got, err := openAll(f, c); err == nil || bytes.Equal(got, plain) {
			t.Errorf("%s: opened (%v)", name, err)
		}
	}
	if _, err := openAll(f, b[:header+chunk]); !errors.Is(err, ErrBackupCorrupt) {
		t.Errorf("cut after chunk 0: %v, want ErrBackupCorrupt", err)
	}
	other := *f.trust
	other.Cluster = []byte("another-cluster-id")
	if _, err := openAll(&fixture{trust: &other}, b); err == nil {
		t.Error("another cluster's trust opened the backup")
	}
	fewer, _ := NewKeyring(map[uint32][KeyBytes]byte{1: {1}})
	other = *f.trust
	other.Keys = fewer
	if _, err := openAll(&fixture{trust: &other}, b); err == nil {
		t.Error("a keyring without key 2 opened the backup")
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func swap(b []byte, header, chunk int) []byte {
	c := bytes.Clone(b)
	copy(c[header:], b[header+chunk:header+2*chunk])
	copy(c[header+chunk:], b[header:header+chunk])
	return c
}
