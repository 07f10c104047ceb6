package zkcoord

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/zkbank/zkbank/engine/entry"
	"github.com/zkbank/zkbank/zkcoord/zktest"
)

const testTimeout = 2 * time.Second // session timeout in tests

// connect opens a session under a root private to the test.
func connect(t *testing.T, ens *zktest.Ensemble, cutter *zktest.Cutter) *Session {
	t.Helper()
	cfg := Config{
		Servers: ens.Connect(), Root: zktest.Root(t), TLS: ens.TLS(), Auth: ens.Auth(),
		SessionTimeout: testTimeout, Logger: slog.New(slog.NewTextHandler(zktest.LogWriter(t), &slog.HandlerOptions{Level: slog.LevelInfo})),
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

// body is a version 1 body of n items: zkcoord carries bodies without
// reading them, so any one msgpack value will do.
func body(n int, tag string) []byte {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf("%s-%d", tag, i)
	}
	b, err := msgpack.Marshal(items)
	if err != nil {
		panic(err)
	}
	return b
}

// envelope encodes an entry that no appender wrote, as an outsider would.
func envelope(t *testing.T, index, epoch uint64, prev entry.Hash, tag string) *entry.Envelope {
	t.Helper()
	e := &entry.Envelope{Index: index, Epoch: epoch, PrevHash: prev, BodyVersion: entry.BodyV1, Body: body(1, tag)}
	if _, err := entry.Encode(e); err != nil {
		t.Fatal(err)
	}
	return e
}

// appendAll appends count entries through a and waits for each.
func appendAll(t *testing.T, a *Appender, count int, tag string) []*entry.Envelope {
	t.Helper()
	var pend []*Pending
	for i := 0; i < count; i++ {
		p, err := a.Append(context.Background(), entry.BodyV1, body(3, fmt.Sprintf("%s-%d", tag, i)), int64(i))
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		pend = append(pend, p)
	}
	var out []*entry.Envelope
	for _, p := range pend {
		<-p.Done()
		if p.Err() != nil {
			t.Fatalf("append %d: %v", p.Entry.Index, p.Err())
		}
		out = append(out, p.Entry)
	}
	return out
}
