package history

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/zkbank/zkbank/engine"
)

// fill writes entries of 1,000 transfers each, between 100 accounts (so
// that every page is full), into a store on disk, and returns it with the
// accounts' numbers.
func fill(b *testing.B, entries int) (*Store, []string) {
	b.Helper()
	s, err := Open(filepath.Join(b.TempDir(), "history"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	e := newEngine(b)
	accounts := make([]string, 100)
	var creates []engine.Command
	for i := range accounts {
		accounts[i] = fmt.Sprintf("%010d", i)
		creates = append(creates, engine.Command{Op: engine.OpCreateAccount, Key: "c" + accounts[i], Account: accounts[i], Name: "bench", Amount: 1 << 40})
	}
	applyAdd(b, s, e, creates...)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 1; i < entries; i++ {
		cmds := make([]engine.Command, 1000)
		for j := range cmds {
			from, to := rng.IntN(len(accounts)), rng.IntN(len(accounts)-1)
			if to >= from {
				to++
			}
			cmds[j] = engine.Command{Op: engine.OpTransfer, Key: fmt.Sprintf("t%d-%d", i, j), Account: accounts[from], To: accounts[to], Amount: 1}
		}
		applyAdd(b, s, e, cmds...)
	}
	return s, accounts
}

// BenchmarkStatementPage reads a page of 100 lines of a random account's
// statement, from a random place in its first half, in stores of ten
// thousand to ten million commands: a page costs a seek and its reads,
// whatever the store holds.
func BenchmarkStatementPage(b *testing.B) {
	for _, entries := range []int{10, 100, 1000, 10_000} {
		b.Run(fmt.Sprintf("commands=%d", entries*1000), func(b *testing.B) {
			if testing.Short() && entries > 100 {
				b.Skip("a million commands and more take long to write; make bench runs them")
			}
			s, accounts := fill(b, entries)
			defer s.Close()
			rng := rand.New(rand.NewPCG(3, 4))
			b.ResetTimer()
			lines := 0
			for range b.N {
				after := Cursor{Index: uint64(rng.IntN(entries/2 + 1)), Position: lastPosition}
				n := 0
				err := s.Statement(accounts[rng.IntN(len(accounts))], after, func(Event) bool { n++; return n < 100 })
				if err != nil {
					b.Fatal(err)
				}
				lines += n
			}
			b.ReportMetric(float64(lines)/float64(b.N), "lines/page")
			if err := s.db.Flush(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(s.DiskBytes())/float64(entries*1000), "disk-bytes/command")
		})
	}
}

// BenchmarkAdd is what the history adds to each applied transfer.
func BenchmarkAdd(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "history"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	e := newEngine(b)
	applyAdd(b, s, e, engine.Command{Op: engine.OpCreateAccount, Key: "a", Account: "A", Name: "a", Amount: 1 << 60},
		engine.Command{Op: engine.OpCreateAccount, Key: "b", Account: "B", Name: "b"})
	b.ResetTimer()
	for i := 0; i < b.N; i += 1000 {
		cmds := make([]engine.Command, min(1000, b.N-i))
		for j := range cmds {
			cmds[j] = engine.Command{Op: engine.OpTransfer, Key: fmt.Sprintf("t%d", i+j), Account: "A", To: "B", Amount: 1}
		}
		b.StopTimer()
		ent := nextEntry(b, e, int64(i), cmds...)
		before := Before(e, ent, nil)
		res, err := e.Apply(ent)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := s.Add(ent, res, e, before); err != nil {
			b.Fatal(err)
		}
	}
}
