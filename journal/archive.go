package journal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/zkbank/zkbank/engine"
)

// An archive holds a run of the journal's entries, as the log's bytes,
// for an auditor to replay after they left the journal:
//
//	"zkbarch1" | uvarint base | [32]byte base hash | frames |
//	uvarint 0 | uvarint count | [4]byte crc
//	frame: uvarint length (1..archiveFrameMax) | the entry's bytes
//
// base is the index just below the first entry and base hash that
// entry's hash: the archive continues the one before it, and the journal
// (or the next archive) continues it. crc is the CRC-32C (big-endian) of
// everything after the magic and before it.
const archiveMagic = "zkbarch1"

const archiveFrameMax = 4 << 20

// ErrArchive: an archive that is cut, damaged or does not chain.
var ErrArchive = errors.New("journal: bad archive")

// ArchiveInfo describes an archive: its entries From..To, and the hashes
// it starts after and ends with.
type ArchiveInfo struct {
	From, To uint64
	BaseHash engine.Hash
	LastHash engine.Hash
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Archive writes the entries First..to into w, checking the chain as it
// reads them. It leaves the journal as it was: trim it (TrimBelow(to+1))
// once the archive is safely stored.
func (j *Journal) Archive(w io.Writer, to uint64) (ArchiveInfo, error) {
	base, baseHash := j.Base()
	if to <= base || to > j.Last() {
		return ArchiveInfo{}, fmt.Errorf("journal: archive to %d: %w (have %d..%d)", to, ErrNotFound, base+1, j.Last())
	}
	info := ArchiveInfo{From: base + 1, To: to, BaseHash: baseHash}
	bw := bufio.NewWriterSize(w, 1<<20)
	crc := crc32.New(castagnoli)
	out := io.MultiWriter(bw, crc)
	if _, err := bw.WriteString(archiveMagic); err != nil {
		return info, err
	}
	head := binary.AppendUvarint(nil, base)
	if _, err := out.Write(append(head, baseHash[:]...)); err != nil {
		return info, err
	}
	var frame []byte
	err := j.Iterate(base+1, to, func(e *engine.Entry) error {
		raw := e.Raw()
		frame = append(binary.AppendUvarint(frame[:0], uint64(len(raw))), raw...)
		info.LastHash = e.Hash()
		_, err := out.Write(frame)
		return err
	})
	if err != nil {
		return info, fmt.Errorf("journal: archive: %w", err)
	}
	tail := binary.AppendUvarint(binary.AppendUvarint(nil, 0), to-base)
	if _, err := out.Write(tail); err != nil {
		return info, err
	}
	if _, err := bw.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32())); err != nil {
		return info, err
	}
	return info, bw.Flush()
}

// ReadArchive reads an archive, decoding each entry with decode (nil:
// engine.DecodeEntry) and checking that it continues the one before, and
// calls fn with each. It fails with ErrArchive on a cut or damaged file;
// fn may have seen entries by then (they chained and decoded).
func ReadArchive(r io.Reader, decode func(raw []byte) (*engine.Entry, error), fn func(*engine.Entry) error) (ArchiveInfo, error) {
	if decode == nil {
		decode = engine.DecodeEntry
	}
	br := bufio.NewReaderSize(r, 1<<20)
	magic := make([]byte, len(archiveMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != archiveMagic {
		return ArchiveInfo{}, fmt.Errorf("%w: not an archive (no %q)", ErrArchive, archiveMagic)
	}
	crc := crc32.New(castagnoli)
	in := &crcReader{r: br, crc: crc}
	base, err := binary.ReadUvarint(in)
	info := ArchiveInfo{From: base + 1, To: base}
	if err == nil {
		_, err = io.ReadFull(in, info.BaseHash[:])
	}
	if err != nil {
		return info, fmt.Errorf("%w: header: %v", ErrArchive, err)
	}
	c := chain{next: base + 1, decode: decode, prevHash: &info.BaseHash}
	for {
		n, err := binary.ReadUvarint(in)
		if err != nil || n > archiveFrameMax {
			return info, fmt.Errorf("%w: after entry %d: a frame of %d bytes (%v)", ErrArchive, info.To, n, err)
		}
		if n == 0 {
			break
		}
		raw := make([]byte, n)
		if _, err := io.ReadFull(in, raw); err != nil {
			return info, fmt.Errorf("%w: entry %d cut short: %v", ErrArchive, info.To+1, err)
		}
		e, err := c.check(entryKey(c.next), raw)
		if err != nil {
			return info, fmt.Errorf("%w: %w", ErrArchive, err)
		}
		info.To, info.LastHash = e.Index, e.Hash()
		if err := fn(e); err != nil {
			return info, err
		}
	}
	count, err := binary.ReadUvarint(in)
	sum := crc.Sum32()
	var want [4]byte
	if err == nil {
		_, err = io.ReadFull(br, want[:])
	}
	if err != nil || count != info.To-base || binary.BigEndian.Uint32(want[:]) != sum {
		return info, fmt.Errorf("%w: its trailer does not match its %d entries (%v)", ErrArchive, info.To-base, err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return info, fmt.Errorf("%w: bytes after its trailer", ErrArchive)
	}
	return info, nil
}

// crcReader sums what it reads.
type crcReader struct {
	r   *bufio.Reader
	crc io.Writer
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.crc.Write(p[:n])
	return n, err
}

func (c *crcReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.crc.Write([]byte{b})
	}
	return b, err
}
