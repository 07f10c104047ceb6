package zkcoord

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

// benchWindow is how long each measurement runs.
const benchWindow = 3 * time.Second

// BenchmarkLogThroughput measures, against one local 3-server ensemble in
// one run: plain unbatched sequential creates (one command per znode, the
// naive design) at concurrency 1 and 64, then the fenced, batched,
// pipelined append path. Run it once: -benchtime 1x.
func BenchmarkLogThroughput(b *testing.B) {
	ens := zktest.Start(b, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Connect(ctx, Config{Servers: ens.Connect(), Root: "/bench", TLS: ens.TLS(), Auth: ens.Auth(), SessionTimeout: 4 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	one := transferCommand(0)
	single, _ := engine.EncodeEntry(&engine.Entry{Envelope: entry.Envelope{Index: 1}, Commands: []engine.Command{one}}) // engine: a realistic payload

	for _, conc := range []int{1, 64} {
		rate := baseline(b, s, single, conc)
		b.ReportMetric(rate, fmt.Sprintf("baseline-c%d-creates/s", conc))
	}
	_, term := awaitTermB(b, s.Campaign(ctx, Candidate{ID: "bench"}))
	log := s.Log(0)
	head, err := log.Recover(ctx, Head{})
	if err != nil {
		b.Fatal(err)
	}
	for _, per := range []int{100, 500} {
		entries, commands, bytes := batched(b, log.NewAppender(term, head, 8), per)
		b.ReportMetric(entries, fmt.Sprintf("fenced-%d-appends/s", per))
		b.ReportMetric(commands, fmt.Sprintf("fenced-%d-commands/s", per))
		b.ReportMetric(bytes/1e6, fmt.Sprintf("fenced-%d-MB/s", per))
		head, err = log.Recover(ctx, head)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("payload: one command encodes to a %d-byte entry", len(single))
}

func transferCommand(i int) engine.Command {
	return engine.Command{Op: engine.OpTransfer, Key: fmt.Sprintf("9b1deb4d-3b7d-4bad-9bdd-%012d", i), Account: "0000000001", To: "0000000002", Amount: 12345}
}

// baseline creates sequential znodes of payload from conc goroutines for
// benchWindow and returns creates per second.
func baseline(b *testing.B, s *Session, payload []byte, conc int) float64 {
	parent := s.Path(fmt.Sprintf("baseline-%d", conc))
	if _, err := s.Conn.Create(parent, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		b.Fatal(err)
	}
	var count atomic.Int64
	deadline := time.Now().Add(benchWindow)
	var wg sync.WaitGroup
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if _, err := s.Conn.Create(parent+"/n-", payload, zk.FlagSequence, zk.WorldACL(zk.PermAll)); err != nil {
					b.Error(err)
					return
				}
				count.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(count.Load()) / benchWindow.Seconds()
}

// batched appends entries of per commands for benchWindow and returns
// appends, commands and bytes per second.
func batched(b *testing.B, a *Appender, per int) (float64, float64, float64) {
	cmds := make([]engine.Command, per)
	for i := range cmds {
		cmds[i] = transferCommand(i)
	}
	body, err := engine.EncodeBody(engine.BodyV1, cmds)
	if err != nil {
		b.Fatal(err)
	}
	var entries, bytes int64
	pending := make(chan *Pending, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p := range pending {
			<-p.Done()
			if p.Err() != nil {
				b.Error(p.Err())
			}
		}
	}()
	start := time.Now()
	for time.Since(start) < benchWindow {
		p, err := a.Append(context.Background(), entry.BodyV1, body, time.Now().UnixMilli())
		if err != nil {
			b.Fatal(err)
		}
		entries++
		bytes += int64(len(p.Entry.Raw()))
		pending <- p
	}
	close(pending)
	<-done
	secs := time.Since(start).Seconds()
	return float64(entries) / secs, float64(entries*int64(per)) / secs, float64(bytes) / secs
}

func awaitTermB(b *testing.B, e *Election) (int, *Term) {
	select {
	case term := <-e.Terms():
		return 0, term
	case <-time.After(20 * time.Second):
		b.Fatal("no term")
	}
	return 0, nil
}
