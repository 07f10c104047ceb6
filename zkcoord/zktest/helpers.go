package zktest

import (
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// Eventually polls ok until it holds, failing the test after within. It
// is how the tests that run ZooKeeper wait: for a condition, never for a
// fixed time.
func Eventually(t testing.TB, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// LogWriter sends what is written to it, a line per write (as slog
// writes), to t.Log while the test runs, and drops it once the test has
// ended (t.Log panics then).
func LogWriter(t testing.TB) io.Writer { return testWriter{t} }

type testWriter struct{ t testing.TB }

var logMu sync.Mutex

func (w testWriter) Write(b []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	defer func() { recover() }()
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
