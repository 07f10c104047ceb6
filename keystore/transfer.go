package keystore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	"github.com/cockroachdb/pebble/v2"
)

// A node that installs a peer's snapshot takes the peer's records with it
// (Export on the peer, Import here): the snapshot holds the window, the
// store what left it. The stream:
//
//	"zkbkeys1" | frames | uvarint 0 | uvarint frame count | crc
//	frame: uvarint key length (1 or more) | scoped key |
//	       uvarint value length | the key's records (as stored)
//
// The closing count tells a complete stream from a cut one; crc, 4 bytes
// big-endian, is the CRC-32C of the bytes after the magic and before it.

var exportMagic = []byte("zkbkeys1")

// scopedKeyMax bounds a scoped key: a principal, a zero byte, a key.
const scopedKeyMax = 1024

// ErrBadStream: an import that is not a whole, well-formed export.
var ErrBadStream = errors.New("keystore: bad key stream")

// Export writes every record the store holds, as of one moment.
func (s *Store) Export(w io.Writer) (keys uint64, err error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{recordPrefix}, UpperBound: []byte{recordPrefix + 1}})
	if err != nil {
		return 0, fmt.Errorf("keystore: export: %w", err)
	}
	defer it.Close()
	out := bufio.NewWriterSize(w, 256<<10)
	if _, err := out.Write(exportMagic); err != nil {
		return 0, fmt.Errorf("keystore: export: %w", err)
	}
	crc := crc32.New(castagnoli)
	bw := io.MultiWriter(out, crc)
	var head []byte
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return keys, fmt.Errorf("keystore: export: %w", err)
		}
		head = binary.AppendUvarint(head[:0], uint64(len(it.Key())-1))
		head = append(head, it.Key()[1:]...)
		head = binary.AppendUvarint(head, uint64(len(v)))
		if _, err := bw.Write(head); err != nil {
			return keys, fmt.Errorf("keystore: export: %w", err)
		}
		if _, err := bw.Write(v); err != nil {
			return keys, fmt.Errorf("keystore: export: %w", err)
		}
		keys++
	}
	if err := it.Error(); err != nil {
		return keys, fmt.Errorf("keystore: export: %w", err)
	}
	tail := binary.AppendUvarint([]byte{0}, keys)
	if _, err := bw.Write(tail); err != nil {
		return keys, fmt.Errorf("keystore: export: %w", err)
	}
	if _, err := out.Write(crc.Sum(nil)); err != nil {
		return keys, fmt.Errorf("keystore: export: %w", err)
	}
	if err := out.Flush(); err != nil {
		return keys, fmt.Errorf("keystore: export: %w", err)
	}
	return keys, nil
}

// importBatchRefs is how many records one spill record of an import
// lists.
const importBatchRefs = 1024

// importBucketMs groups imported records by first-use time, so that
// collection forgets them at most this late.
const importBucketMs = 3_600_000

// Import adds a peer's export to what the store holds, checking every
// record, taken after the peer's snapshot at index: once it returns, the
// store vouches for that snapshot (Vouches) and the node's later ones,
// and no longer for the node's older ones (the peer may have forgotten
// what they need). A node that stops halfway starts from a snapshot of
// its own, which the records added do not change. Records the node holds
// of its own, and the peer's of the same first use, are the same, as both
// come from the log; a node whose own history forked resets the store
// first (Reset). A stream that turns out cut or damaged empties the
// store (records merged before the damage showed may be wrong), so that
// it vouches for nothing until an import succeeds.
func (s *Store) Import(r io.Reader, index uint64) (keys uint64, err error) {
	in := bufio.NewReaderSize(r, 256<<10)
	magic := make([]byte, len(exportMagic))
	if _, err := io.ReadFull(in, magic); err != nil || string(magic) != string(exportMagic) {
		return 0, fmt.Errorf("%w: no header", ErrBadStream)
	}
	br := &summed{r: in, crc: crc32.New(castagnoli)}
	im := importer{s: s, buckets: map[int64]*spillRecord{}}
	defer func() {
		if im.b != nil {
			im.b.Close()
		}
		if err != nil {
			err = errors.Join(err, s.Reset())
		}
	}()
	for {
		key, value, end, err := readFrame(br)
		if err != nil {
			return keys, err
		}
		if end {
			if want, err := binary.ReadUvarint(br); err != nil || want != keys {
				return keys, fmt.Errorf("%w: %d keys read, the stream says %d", ErrBadStream, keys, want)
			}
			if err := checkSum(br); err != nil {
				return keys, err
			}
			return keys, im.finish(index)
		}
		if err := im.add(key, value); err != nil {
			return keys, err
		}
		keys++
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// summed reads through r, adding exactly what it hands out to crc.
type summed struct {
	r   *bufio.Reader
	crc hash.Hash32
}

func (s *summed) ReadByte() (byte, error) {
	b, err := s.r.ReadByte()
	if err == nil {
		s.crc.Write([]byte{b})
	}
	return b, err
}

func (s *summed) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.crc.Write(p[:n])
	return n, err
}

// checkSum reads the closing CRC, which the sum has not seen.
func checkSum(br *summed) error {
	var want [4]byte
	if _, err := io.ReadFull(br.r, want[:]); err != nil || binary.BigEndian.Uint32(want[:]) != br.crc.Sum32() {
		return fmt.Errorf("%w: checksum", ErrBadStream)
	}
	return nil
}

// readFrame reads one frame, or the end mark.
func readFrame(br *summed) (key string, value []byte, end bool, err error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return "", nil, false, fmt.Errorf("%w: cut: %w", ErrBadStream, err)
	}
	if n == 0 {
		return "", nil, true, nil
	}
	if n > scopedKeyMax {
		return "", nil, false, fmt.Errorf("%w: key of %d bytes", ErrBadStream, n)
	}
	k := make([]byte, n)
	if _, err := io.ReadFull(br, k); err != nil {
		return "", nil, false, fmt.Errorf("%w: cut: %w", ErrBadStream, err)
	}
	vn, err := binary.ReadUvarint(br)
	if err != nil || vn > 1<<20 {
		return "", nil, false, fmt.Errorf("%w: value of key %q", ErrBadStream, k)
	}
	value = make([]byte, vn)
	if _, err := io.ReadFull(br, value); err != nil {
		return "", nil, false, fmt.Errorf("%w: cut: %w", ErrBadStream, err)
	}
	return string(k), value, false, nil
}

// importer writes imported records in batches, and their spill records
// grouped by first-use hour (in time order, as collection reads them).
type importer struct {
	s       *Store
	b       *pebble.Batch
	buckets map[int64]*spillRecord
	seq     uint64
}

func (im *importer) add(key string, value []byte) error {
	recs, err := decodeRecords(key, value)
	if err != nil || len(recs) == 0 {
		return fmt.Errorf("%w: key %q: %v", ErrBadStream, key, err)
	}
	if im.b == nil {
		im.b = im.s.db.NewBatch()
	}
	if err := im.b.Merge(recordKey(key), value, nil); err != nil {
		return fmt.Errorf("keystore: import: %w", err)
	}
	for i := range recs {
		h := recs[i].TimeMs / importBucketMs
		sp := im.buckets[h]
		if sp == nil {
			sp = &spillRecord{}
			im.buckets[h] = sp
		}
		sp.add(&recs[i])
		if len(sp.refs) >= importBatchRefs {
			if err := im.flushBucket(h); err != nil {
				return err
			}
		}
	}
	if im.b.Len() >= 1<<20 {
		return im.commit()
	}
	return nil
}

// flushBucket writes a bucket's spill record under the newest first-use
// index it lists, with its newest time as the spill's time (at or before
// any entry at that index or later).
func (im *importer) flushBucket(h int64) error {
	sp := im.buckets[h]
	delete(im.buckets, h)
	var newest uint64
	for _, r := range sp.refs {
		newest = max(newest, r.index)
	}
	sp.timeMs = sp.newestMs
	im.seq++
	if err := im.b.Set(spillKey(newest, im.seq), sp.encode(), nil); err != nil {
		return fmt.Errorf("keystore: import: %w", err)
	}
	return nil
}

func (im *importer) commit() error {
	if im.b == nil {
		return nil
	}
	defer func() { im.b.Close(); im.b = nil }()
	if err := im.b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("keystore: import: %w", err)
	}
	return nil
}

func (im *importer) finish(index uint64) error {
	if im.b == nil && len(im.buckets) > 0 {
		im.b = im.s.db.NewBatch()
	}
	for h := range im.buckets {
		if err := im.flushBucket(h); err != nil {
			return err
		}
	}
	if err := im.commit(); err != nil {
		return err
	}
	return im.s.vouch(index, index)
}

// Reset forgets every record, and vouches for no snapshot, durably.
func (s *Store) Reset() error {
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange([]byte{0}, []byte{0xff}, nil); err != nil {
		return fmt.Errorf("keystore: reset: %w", err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("keystore: reset: %w", err)
	}
	s.collector = collector{}
	return s.vouch(^uint64(0), 0)
}
