package seal

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
)

// BenchmarkSeal and BenchmarkOpen: what sealing costs a leader and
// verifying and opening costs every node, per entry, for an entry of one
// transfer, one of 64 (a busy leader's typical batch) and one of 1,000 (a
// batch request).
func BenchmarkSeal(b *testing.B) {
	for _, n := range []int{1, 64, 1000} {
		b.Run(fmt.Sprintf("transfers=%d", n), func(b *testing.B) {
			f, term, body := benchFixture(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				e := &entry.Envelope{Index: uint64(i + 2), Epoch: 1, TimeMs: 1_800_000_000_000, BodyVersion: entry.BodySealed, Body: body}
				if err := term.Seal(e); err != nil {
					b.Fatal(err)
				}
			}
			_ = f
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, n := range []int{1, 64, 1000} {
		b.Run(fmt.Sprintf("transfers=%d", n), func(b *testing.B) {
			f, term, body := benchFixture(b, n)
			first := &entry.Envelope{Index: 1, Epoch: 1, TimeMs: 1_800_000_000_000, BodyVersion: entry.BodySealed, Body: body}
			if err := term.Seal(first); err != nil {
				b.Fatal(err)
			}
			if _, err := entry.Encode(first); err != nil {
				b.Fatal(err)
			}
			next := &entry.Envelope{Index: 2, Epoch: 1, PrevHash: first.Hash(), TimeMs: 1_800_000_000_000, BodyVersion: entry.BodySealed, Body: body}
			if err := term.Seal(next); err != nil {
				b.Fatal(err)
			}
			if _, err := entry.Encode(next); err != nil {
				b.Fatal(err)
			}
			c := f.cursor()
			if _, err := c.Open(first); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(next.Raw())))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := c.Open(next); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchFixture(b *testing.B, transfers int) (*fixture, *Term, []byte) {
	f := newFixture(b)
	key, cert, _ := f.node("n1")
	cmds := make([]engine.Command, transfers)
	for i := range cmds {
		cmds[i] = engine.Command{Op: engine.OpTransfer, Key: fmt.Sprintf("key-%06d", i), Account: "A-000001", To: "A-000002", Amount: 100, Principal: "t1"}
	}
	body, err := engine.EncodeCommands(cmds)
	if err != nil {
		b.Fatal(err)
	}
	return f, f.trust.NewTerm(key, cert, nil), body
}

// BenchmarkBackup: sealing and opening a backup file, per byte of the
// snapshot it holds (a snapshot of a million accounts is about 51 MB).
func BenchmarkBackup(b *testing.B) {
	f := newFixture(b)
	plain := make([]byte, 16<<20)
	for i := range plain {
		plain[i] = byte(i * 7)
	}
	var sealed bytes.Buffer
	b.Run("seal", func(b *testing.B) {
		b.SetBytes(int64(len(plain)))
		for range b.N {
			sealed.Reset()
			w, err := f.trust.SealBackup(&sealed)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := w.Write(plain); err != nil {
				b.Fatal(err)
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		b.SetBytes(int64(len(plain)))
		for range b.N {
			r, _, err := f.trust.OpenBackup(bytes.NewReader(sealed.Bytes()))
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, r); err != nil || n != int64(len(plain)) {
				b.Fatalf("opened %d bytes: %v", n, err)
			}
		}
	})
}
