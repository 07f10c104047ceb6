package snapshot

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/zkbank/zkbank/engine"
)

// Load restores the engine a snapshot file holds in one pass, without
// holding the state's bytes in memory (50 MB for a million accounts). The
// engine is built while the file is read and returned only if the
// trailer, the state hash and the header all check out. Restart, catch-up
// and audits all read snapshots this way.
func Load(path string, cfg engine.Config) (*engine.Engine, Meta, error) {
	var e *engine.Engine
	m, err := readFile(path, func(r io.Reader) (Meta, error) {
		var m Meta
		var err error
		e, m, err = load(r, cfg)
		return m, err
	})
	return e, m, err
}

// Read is Load from a stream (a backup file opens to one); nothing may
// follow the snapshot.
func Read(r io.Reader, cfg engine.Config) (*engine.Engine, Meta, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	e, m, err := load(br, cfg)
	if err != nil {
		return nil, Meta{}, fmt.Errorf("snapshot: %w", err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return nil, Meta{}, fmt.Errorf("snapshot: %w: bytes after the trailer", ErrCorrupt)
	}
	return e, m, nil
}

// Verify checks a snapshot file (trailer, header, state hash) as it
// streams it, without restoring the state, and returns its header.
func Verify(path string) (Meta, error) { return readFile(path, verify) }

func verify(r io.Reader) (Meta, error) {
	c, err := openStream(r)
	if err != nil {
		return Meta{}, err
	}
	if _, err := io.Copy(io.Discard, c.state()); err != nil {
		return Meta{}, fmt.Errorf("%w: state: %v", ErrCorrupt, err)
	}
	if err := c.finish(); err != nil {
		return Meta{}, err
	}
	return c.meta, nil
}

// readFile runs read over the file at path and insists that nothing
// follows the snapshot.
func readFile(path string, read func(io.Reader) (Meta, error)) (Meta, error) {
	f, err := os.Open(path)
	if err != nil {
		return Meta{}, fmt.Errorf("snapshot: open %s: %w", path, err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	m, err := read(br)
	if err != nil {
		return Meta{}, fmt.Errorf("snapshot: %s: %w", path, err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return Meta{}, fmt.Errorf("snapshot: %s: %w: bytes after the trailer", path, ErrCorrupt)
	}
	return m, nil
}

func load(r io.Reader, cfg engine.Config) (*engine.Engine, Meta, error) {
	c, err := openStream(r)
	if err != nil {
		return nil, Meta{}, err
	}
	state := c.state()
	e, restoreErr := engine.Restore(cfg, state)
	// Read the state to its end either way: a checksum failure explains a
	// restore failure better than the restore error does.
	if _, err := io.Copy(io.Discard, state); err != nil {
		return nil, Meta{}, fmt.Errorf("%w: state: %v", ErrCorrupt, err)
	}
	if err := c.finish(); err != nil {
		return nil, Meta{}, err
	}
	if restoreErr != nil {
		return nil, Meta{}, fmt.Errorf("%w: %w", ErrCorrupt, restoreErr)
	}
	if err := c.meta.check(e); err != nil {
		return nil, Meta{}, err
	}
	return e, c.meta, nil
}

// Receive stores a snapshot streamed from r (a peer's download) in the
// store, checking it as it is written: nothing is renamed into place
// unless the trailer and the state hash check out. The state is not held
// in memory.
func (s *Store) Receive(r io.Reader) (Info, error) {
	c, err := openStream(r)
	if err != nil {
		return Info{}, err
	}
	tmp := s.PathFor(c.meta.Index) + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return Info{}, fmt.Errorf("snapshot: create %s: %w", tmp, err)
	}
	if err := receiveInto(f, c); err != nil {
		f.Close()
		os.Remove(tmp)
		return Info{}, err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return Info{}, fmt.Errorf("snapshot: close %s: %w", tmp, err)
	}
	return s.install(tmp, c.meta.Index, c.meta.Size())
}

func receiveInto(f *os.File, c *stream) error {
	bw := bufio.NewWriterSize(f, 1<<20)
	bw.Write(c.header) // a bufio.Writer keeps its first error for Flush
	n, err := io.Copy(bw, c.state())
	if err != nil {
		return fmt.Errorf("snapshot: receive %d: %w", c.meta.Index, err)
	}
	if uint64(n) != c.meta.StateLen {
		return fmt.Errorf("%w: state: %d of %d bytes", ErrCorrupt, n, c.meta.StateLen)
	}
	if err := c.finish(); err != nil {
		return err
	}
	bw.Write(c.meta.Checksum[:])
	if c.meta.Signed {
		bw.Write(signatureBlock(c.meta.Signature))
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("snapshot: write %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("snapshot: sync %s: %w", f.Name(), err)
	}
	return nil
}
