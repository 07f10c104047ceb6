package snapshot

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	"github.com/zkbank/zkbank/engine"
)

// Pending is a snapshot streamed into a temporary file by Begin and not yet
// in place; Commit or Abort finishes it.
type Pending struct {
	store *Store
	f     *os.File
	meta  Meta
}

// State is what a snapshot is taken of: an engine.Capture, or an
// engine.Engine that cannot change while Begin runs.
type State interface {
	Index() uint64
	Epoch() uint64
	LastHash() engine.Hash
	Totals() engine.Totals
	WriteState(io.Writer) error
}

// Begin writes the state straight into a temporary file, with no copy of
// it in memory: a node holding a million accounts would otherwise make a
// 50 MB buffer for every snapshot. The rest (checksum, fsync, rename) is
// Commit's.
func (s *Store) Begin(e State, nowMs int64) (*Pending, error) {
	tmp := s.PathFor(e.Index()) + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("snapshot: create %s: %w", tmp, err)
	}
	p := &Pending{store: s, f: f}
	if err := p.writeState(e, nowMs); err != nil {
		p.Abort()
		return nil, err
	}
	return p, nil
}

// writeState writes a placeholder header and the state, hashing it; the
// header is written for real by Commit, once the hash is known.
func (p *Pending) writeState(e State, nowMs int64) error {
	bw := bufio.NewWriterSize(p.f, 1<<20)
	if _, err := bw.Write(make([]byte, headerLen)); err != nil {
		return fmt.Errorf("snapshot: write %s: %w", p.f.Name(), err)
	}
	hash := sha256.New()
	count := &countingWriter{}
	if err := e.WriteState(io.MultiWriter(bw, hash, count)); err != nil {
		return fmt.Errorf("snapshot: capture at %d: %w", e.Index(), err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("snapshot: write %s: %w", p.f.Name(), err)
	}
	tot := e.Totals()
	p.meta = Meta{
		Index: e.Index(), Epoch: e.Epoch(), EntryHash: e.LastHash(), Accounts: tot.Accounts,
		TotalBalance: tot.Balance, CreatedMs: nowMs, StateLen: count.n, Signed: p.store.sign != nil,
	}
	hash.Sum(p.meta.StateHash[:0])
	return nil
}

// Index is the log index the snapshot is at.
func (p *Pending) Index() uint64 { return p.meta.Index }

// Commit writes the header and the trailer (reading the state back from
// the file, which is in the page cache), syncs the file, renames it into
// place, syncs the directory and prunes old snapshots.
func (p *Pending) Commit() (Info, error) {
	tmp := p.f.Name()
	if err := p.seal(); err != nil {
		p.Abort()
		return Info{}, err
	}
	if err := p.f.Close(); err != nil {
		os.Remove(tmp)
		return Info{}, fmt.Errorf("snapshot: close %s: %w", tmp, err)
	}
	return p.store.install(tmp, p.meta.Index, p.meta.Size())
}

func (p *Pending) seal() error {
	name := p.f.Name()
	if _, err := p.f.WriteAt(p.meta.encode(), 0); err != nil {
		return fmt.Errorf("snapshot: write header %s: %w", name, err)
	}
	sum := sha256.New()
	body := io.NewSectionReader(p.f, 0, headerLen+int64(p.meta.StateLen))
	if _, err := io.Copy(sum, body); err != nil {
		return fmt.Errorf("snapshot: read back %s: %w", name, err)
	}
	sum.Sum(p.meta.Checksum[:0])
	tail := p.meta.Checksum[:]
	if p.meta.Signed {
		sig, err := p.store.sign(p.meta.Checksum)
		if err != nil {
			return fmt.Errorf("snapshot: sign %s: %w", name, err)
		}
		if len(sig) == 0 || len(sig) > SignatureBytesMax {
			return fmt.Errorf("snapshot: sign %s: a signature of %d bytes", name, len(sig))
		}
		p.meta.Signature = sig
		tail = append(append([]byte(nil), tail...), signatureBlock(sig)...)
	}
	if _, err := p.f.WriteAt(tail, headerLen+int64(p.meta.StateLen)); err != nil {
		return fmt.Errorf("snapshot: write trailer %s: %w", name, err)
	}
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("snapshot: sync %s: %w", name, err)
	}
	return nil
}

// Abort removes the temporary file.
func (p *Pending) Abort() {
	p.f.Close()
	os.Remove(p.f.Name())
}

type countingWriter struct{ n uint64 }

func (c *countingWriter) Write(b []byte) (int, error) {
	c.n += uint64(len(b))
	return len(b), nil
}
