package journal

import (
	"testing"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/enginetest"
	"github.com/zkbank/zkbank/keystore"
)

// BenchmarkAppend appends entries of 500 commands (about 40 KB, what the
// leader's batcher produces under load), 4 entries per synced batch, to a
// journal on the real disk.
func BenchmarkAppend(b *testing.B) {
	j, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	ents := enginetest.NewLog(1).Entries(b.N, 500)
	var bytes int64
	for _, e := range ents {
		bytes += int64(len(e.Raw()))
	}
	b.ResetTimer()
	for i := 0; i < len(ents); i += 4 {
		if err := j.Append(ents[i:min(i+4, len(ents))]...); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/secs, "entries/s")
	b.ReportMetric(float64(bytes)/secs/1e6, "MB/s")
	b.ReportMetric(float64(b.N*500)/secs, "commands/s")
}

// BenchmarkReplay replays entries of 1000 commands from a journal into an
// engine: read, decode, verify the chain, apply.
func BenchmarkReplay(b *testing.B) {
	const per = 1000
	j, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	log := enginetest.NewLog(2)
	log.Accounts = 10_000
	count := max(b.N/per, 20)
	for i := 0; i < count; i += 10 {
		if err := j.Append(log.Entries(min(10, count-i), per)...); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	e, _ := engine.New(engine.DefaultConfig())
	if err := j.Replay(e, keystore.OpenMem(0), 0, nil); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(count*per)/b.Elapsed().Seconds(), "commands/s")
}
