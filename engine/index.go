package engine

import (
	"hash/maphash"
	"math/bits"
)

// hashIndex maps 32-bit hashes to 32-bit values (slot ids, window
// positions) in one flat table with linear probing. A lookup usually reads
// one cache line, where a Go map this large reads two or three; the
// engine makes several lookups per command in maps of up to a million
// entries, so this is where apply spends its time. Entries with equal
// hashes are all kept and the caller tells them apart (eq). Deleting shifts
// later entries back instead of leaving tombstones, so the key window's
// constant churn never lengthens the probes.
//
// An entry is occupied<<63 | hash(31 bits)<<32 | value; 0 is empty.
type hashIndex struct {
	entries []uint64
	shift   uint // 64 - log2(len(entries))
	n       int
}

// indexHash hashes a key for a hashIndex. The seed is random per table: it
// decides where entries sit in memory and nothing a client can see, and
// it keeps clients from choosing keys that crowd one probe run.
func indexHash(seed maphash.Seed, s string) uint32 { return uint32(maphash.String(seed, s)) }

func indexHashBytes(seed maphash.Seed, b []byte) uint32 { return uint32(maphash.Bytes(seed, b)) }

const (
	indexMinSize  = 16
	indexOccupied = uint64(1) << 63
)

func newHashIndex(sizeHint int) hashIndex {
	size := indexMinSize
	for size*5/8 < sizeHint {
		size *= 2
	}
	return hashIndex{entries: make([]uint64, size), shift: uint(64 - bits.TrailingZeros(uint(size)))}
}

func (x *hashIndex) len() int { return x.n }

func indexEntry(h, v uint32) uint64 { return indexOccupied | uint64(h&0x7fffffff)<<32 | uint64(v) }

// home is the slot an entry's probe starts at: the top bits of the hash
// times the golden ratio (Fibonacci hashing), which depend on every bit
// of the hash.
func (x *hashIndex) home(e uint64) int {
	return int((((e >> 32) & 0x7fffffff) * 0x9e3779b97f4a7c15) >> x.shift)
}

// find returns the value of the first entry for h that eq accepts.
func (x *hashIndex) find(h uint32, eq func(v uint32) bool) (uint32, bool) {
	want := indexEntry(h, 0) >> 32
	mask := len(x.entries) - 1
	for i := x.home(indexEntry(h, 0)); ; i = (i + 1) & mask {
		e := x.entries[i]
		if e == 0 {
			return 0, false
		}
		if e>>32 == want && eq(uint32(e)) {
			return uint32(e), true
		}
	}
}

// insert adds an entry; the caller knows no entry for h holds v.
func (x *hashIndex) insert(h, v uint32) {
	if (x.n+1)*8 > len(x.entries)*5 {
		x.grow()
	}
	x.place(indexEntry(h, v))
	x.n++
}

func (x *hashIndex) place(e uint64) {
	mask := len(x.entries) - 1
	i := x.home(e)
	for x.entries[i] != 0 {
		i = (i + 1) & mask
	}
	x.entries[i] = e
}

func (x *hashIndex) grow() {
	old := x.entries
	x.entries = make([]uint64, 2*len(old))
	x.shift--
	for _, e := range old {
		if e != 0 {
			x.place(e)
		}
	}
}

// remove deletes the entry for h holding v, if there is one, and moves
// back the entries after it that its slot kept from their homes.
func (x *hashIndex) remove(h, v uint32) {
	target := indexEntry(h, v)
	mask := len(x.entries) - 1
	i := x.home(target)
	for x.entries[i] != target {
		if x.entries[i] == 0 {
			return
		}
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; x.entries[j] != 0; j = (j + 1) & mask {
		// The entry at j may fill the gap at i if i lies on its probe
		// path: no further from its home than j is.
		if (j-x.home(x.entries[j]))&mask >= (j-i)&mask {
			x.entries[i] = x.entries[j]
			i = j
		}
	}
	x.entries[i] = 0
	x.n--
}
