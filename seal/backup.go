package seal

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/snapshot"
)

// A backup file (docs/format.md, "Backup file") is a snapshot file sealed
// with a data key in chunks, so that neither side holds it in memory and
// a cut, reordered or changed chunk is found: each chunk's nonce is the
// file's random prefix and the chunk's number, and its additional data
// the header and whether it is the last.
const (
	backupMagic     = "ZKBBACK\x00"
	backupVersion   = 1
	backupChunk     = 64 << 10
	noncePrefixSize = 8
)

// ErrBackupCorrupt: a backup file that is not one, was cut short or was
// changed.
var ErrBackupCorrupt = errors.New("seal: backup corrupt")

// backupHeader is magic | version | key id | cluster id length (uint16)
// | cluster id | nonce prefix, integers big-endian.
func backupHeader(kid uint32, cluster, prefix []byte) []byte {
	h := []byte(backupMagic)
	h = binary.BigEndian.AppendUint32(h, backupVersion)
	h = binary.BigEndian.AppendUint32(h, kid)
	h = binary.BigEndian.AppendUint16(h, uint16(len(cluster)))
	h = append(h, cluster...)
	return append(h, prefix...)
}

// clusterIDMax bounds the cluster id a header may carry (docs/format.md).
const clusterIDMax = 64

// BackupSize is the length of the backup file of plain bytes that
// SealBackup writes: the header, and a chunk's length and tag for each
// 64 KiB (at least one chunk, the last).
func (t *Trust) BackupSize(plain int64) int64 {
	chunks := max(1, (plain+backupChunk-1)/backupChunk)
	return int64(len(backupMagic)+10+len(t.Cluster)+noncePrefixSize) + plain + chunks*(4+16)
}

// SealBackup returns a writer that seals what is written to it into w
// with the newest data key; Close writes the last chunk and must be
// called.
func (t *Trust) SealBackup(w io.Writer) (io.WriteCloser, error) {
	if len(t.Cluster) == 0 || len(t.Cluster) > clusterIDMax || t.Keys == nil {
		return nil, errors.New("seal: a backup needs the cluster id and a data key")
	}
	kid := t.Keys.Current()
	g, err := t.aead(kid)
	if err != nil {
		return nil, fmt.Errorf("seal: backup: %w", err)
	}
	prefix := make([]byte, noncePrefixSize)
	if _, err := rand.Read(prefix); err != nil {
		return nil, err
	}
	header := backupHeader(kid, t.Cluster, prefix)
	if _, err := w.Write(header); err != nil {
		return nil, fmt.Errorf("seal: write backup header: %w", err)
	}
	return &backupWriter{w: w, g: g, header: header, prefix: prefix, buf: make([]byte, 0, backupChunk)}, nil
}

type backupWriter struct {
	w      io.Writer
	g      cipher.AEAD
	header []byte
	prefix []byte
	buf    []byte
	n      uint32 // chunks written
	out    []byte
	closed bool
}

func (b *backupWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if len(b.buf) == backupChunk {
			if err := b.flush(false); err != nil {
				return written, err
			}
		}
		k := copy(b.buf[len(b.buf):backupChunk], p)
		b.buf = b.buf[:len(b.buf)+k]
		p, written = p[k:], written+k
	}
	return written, nil
}

func (b *backupWriter) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	return b.flush(true)
}

// flush writes one chunk: uint32 length of its ciphertext, then the
// ciphertext.
func (b *backupWriter) flush(last bool) error {
	if b.n == ^uint32(0) {
		return errors.New("seal: backup too large")
	}
	b.out = binary.BigEndian.AppendUint32(b.out[:0], uint32(len(b.buf)+b.g.Overhead()))
	b.out = b.g.Seal(b.out, chunkNonce(b.prefix, b.n), b.buf, chunkAAD(b.header, last))
	b.n++
	b.buf = b.buf[:0]
	if _, err := b.w.Write(b.out); err != nil {
		return fmt.Errorf("seal: write backup: %w", err)
	}
	return nil
}

func chunkNonce(prefix []byte, n uint32) []byte {
	return binary.BigEndian.AppendUint32(append([]byte(nil), prefix...), n)
}

func chunkAAD(header []byte, last bool) []byte {
	flag := byte(0)
	if last {
		flag = 1
	}
	return append(append([]byte(nil), header...), flag)
}

// OpenBackup reads a backup's header and returns a reader of what was
// sealed, and the id of the key it was sealed with. The reader fails
// with ErrBackupCorrupt at the first chunk that does not open, and at
// the end when the last chunk is missing.
func (t *Trust) OpenBackup(r io.Reader) (io.Reader, uint32, error) {
	br := bufio.NewReaderSize(r, backupChunk+64)
	fixed := make([]byte, len(backupMagic)+10)
	if _, err := io.ReadFull(br, fixed); err != nil || string(fixed[:8]) != backupMagic {
		return nil, 0, fmt.Errorf("%w: not a zkbank backup file", ErrBackupCorrupt)
	}
	if v := binary.BigEndian.Uint32(fixed[8:]); v != backupVersion {
		return nil, 0, fmt.Errorf("seal: backup file version %d; this build reads %d", v, backupVersion)
	}
	kid := binary.BigEndian.Uint32(fixed[12:])
	rest := make([]byte, int(binary.BigEndian.Uint16(fixed[16:]))+noncePrefixSize)
	if len(rest) > clusterIDMax+noncePrefixSize {
		return nil, 0, fmt.Errorf("%w: cluster id of %d bytes", ErrBackupCorrupt, len(rest)-noncePrefixSize)
	}
	if _, err := io.ReadFull(br, rest); err != nil {
		return nil, 0, fmt.Errorf("%w: cut short in its header", ErrBackupCorrupt)
	}
	cluster, prefix := rest[:len(rest)-noncePrefixSize], rest[len(rest)-noncePrefixSize:]
	if !bytes.Equal(cluster, t.Cluster) {
		return nil, kid, fmt.Errorf("seal: the backup is of cluster %x, not this one (%x)", cluster, t.Cluster)
	}
	header := append(fixed, rest...)
	g, err := t.aead(kid)
	if err != nil {
		return nil, kid, fmt.Errorf("seal: open backup: %w", err)
	}
	return &backupReader{r: br, g: g, header: header, prefix: prefix}, kid, nil
}

type backupReader struct {
	r      *bufio.Reader
	g      cipher.AEAD
	header []byte
	prefix []byte
	n      uint32
	plain  []byte // what the current chunk has left
	cipher []byte
	done   bool
}

func (b *backupReader) Read(p []byte) (int, error) {
	for len(b.plain) == 0 {
		if b.done {
			return 0, io.EOF
		}
		if err := b.next(); err != nil {
			return 0, err
		}
	}
	k := copy(p, b.plain)
	b.plain = b.plain[k:]
	return k, nil
}

// next opens the next chunk; it is the last one when nothing follows it,
// which its additional data must confirm.
func (b *backupReader) next() error {
	var size [4]byte
	if _, err := io.ReadFull(b.r, size[:]); err != nil {
		return fmt.Errorf("%w: cut short before chunk %d", ErrBackupCorrupt, b.n)
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < uint32(b.g.Overhead()) || n > backupChunk+uint32(b.g.Overhead()) {
		return fmt.Errorf("%w: chunk %d of %d bytes", ErrBackupCorrupt, b.n, n)
	}
	if cap(b.cipher) < int(n) {
		b.cipher = make([]byte, n)
	}
	b.cipher = b.cipher[:n]
	if _, err := io.ReadFull(b.r, b.cipher); err != nil {
		return fmt.Errorf("%w: cut short in chunk %d", ErrBackupCorrupt, b.n)
	}
	_, err := b.r.Peek(1)
	last := errors.Is(err, io.EOF)
	if err != nil && !last {
		return fmt.Errorf("seal: read backup: %w", err)
	}
	plain, err := b.g.Open(b.cipher[:0], chunkNonce(b.prefix, b.n), b.cipher, chunkAAD(b.header, last))
	if err != nil {
		return fmt.Errorf("%w: chunk %d does not open (changed, reordered, or the file was cut)", ErrBackupCorrupt, b.n)
	}
	b.n++
	b.plain, b.done = plain, last
	return nil
}

// ReadBackup opens a backup file and restores the snapshot it holds,
// verified: checksum, state hash, header, and its signature against the
// CA bundle (t.Roots). It returns the id of the key the file is sealed
// with too. bankctl backup checks a file with it before keeping it.
func (t *Trust) ReadBackup(r io.Reader, cfg engine.Config) (*engine.Engine, snapshot.Meta, uint32, error) {
	if t.Roots == nil {
		return nil, snapshot.Meta{}, 0, errors.New("seal: verifying a backup needs the CA bundle")
	}
	plain, kid, err := t.OpenBackup(r)
	if err != nil {
		return nil, snapshot.Meta{}, kid, err
	}
	e, meta, err := snapshot.Read(plain, cfg)
	if err != nil {
		return nil, meta, kid, err
	}
	if err := t.CheckSnapshot(meta, e); err != nil {
		return nil, meta, kid, err
	}
	return e, meta, kid, nil
}
