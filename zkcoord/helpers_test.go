package zkcoord

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

const testTimeout = 2 * time.Second // session timeout in tests

// connect opens a session under a root private to the test.
func connect(t *testing.T, ens *zktest.Ensemble, cutter *zktest.Cutter) *Session {
	t.Helper()
	cfg := Config{
		Servers: ens.Connect(), Root: "/" + strings.ReplaceAll(t.Name(), "/", "-"),
		SessionTimeout: testTimeout, Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	if cutter != nil {
		cfg.Dialer = cutter.Dial
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// testWriter sends slog output to t.Log while the test runs.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	defer func() { recover() }() // the test may have ended
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// awaitTerm waits for the next term on any of the elections.
func awaitTerm(t *testing.T, within time.Duration, els ...*Election) (int, *Term) {
	t.Helper()
	deadline := time.After(within)
	for {
		for i, e := range els {
			select {
			case term := <-e.Terms():
				if term.Done() != nil && term.Err() == nil {
					return i, term
				}
			default:
			}
		}
		select {
		case <-deadline:
			t.Fatalf("no leader within %v", within)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func cmds(n int, tag string) []engine.Command {
	out := make([]engine.Command, n)
	for i := range out {
		out[i] = engine.Command{Op: engine.OpDeposit, Key: fmt.Sprintf("%s-%d", tag, i), Account: "A", Amount: 1}
	}
	return out
}

// appendAll appends count entries through a and waits for each.
func appendAll(t *testing.T, a *Appender, count int, tag string) []*engine.Entry {
	t.Helper()
	var pend []*Pending
	for i := 0; i < count; i++ {
		p, err := a.Append(context.Background(), cmds(3, fmt.Sprintf("%s-%d", tag, i)), int64(i))
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		pend = append(pend, p)
	}
	var out []*engine.Entry
	for _, p := range pend {
		<-p.Done()
		if p.Err() != nil {
			t.Fatalf("append %d: %v", p.Entry.Index, p.Err())
		}
		out = append(out, p.Entry)
	}
	return out
}
