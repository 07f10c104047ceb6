package api

import (
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zkbank/zkbank/cmd/internal/wire"
)

// events logs and counts what the guard refused and what admins did, as
// structured events: who (the principal's name and its "by"), the route,
// the outcome; never a credential. Refusals are counted all, but logged
// at most refusalLogsPerSecond a second (one who sends garbage must not
// fill the disk); the next line says how many were left out.
type events struct {
	log     *slog.Logger
	count   func(kind, what string)
	logs    limiter
	dropped atomic.Int64
}

const refusalLogsPerSecond = 20

func newEvents(log *slog.Logger, count func(kind, what string)) *events {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if count == nil {
		count = func(string, string) {}
	}
	return &events{log: log, count: count, logs: newLimiter(refusalLogsPerSecond)}
}

func who(c *caller) []any {
	if c == nil {
		return []any{"principal", "(none)"}
	}
	return []any{"principal", c.name, "by", c.principal, "role", c.role.String()}
}

// refused records a request refused before it did anything.
func (e *events) refused(r *http.Request, c *caller, prob *wire.Problem) {
	e.count("refused", prob.Code)
	if !e.logs.allow("") {
		e.dropped.Add(1)
		return
	}
	attrs := append(who(c), "route", r.Method+" "+r.URL.Path, "code", prob.Code, "remote", r.RemoteAddr)
	if n := e.dropped.Swap(0); n > 0 {
		attrs = append(attrs, "refusals_not_logged_before", n)
	}
	e.log.Warn("request refused", attrs...)
}

// admin records an admin's action (tokens, certificates, members) once
// the log took it.
func (e *events) admin(r *http.Request, action string, attrs ...any) {
	e.count("admin", action)
	e.log.Info("admin action", append(append(who(callerOf(r)), "action", action), attrs...)...)
}

// limiter is a token bucket per key: rate requests a second, as many at
// once. A zero rate lets everything through.
type limiter struct {
	rate    float64
	now     func() time.Time
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// limiterKeysMax bounds the buckets kept; past it, full ones are dropped.
const limiterKeysMax = 10_000

func newLimiter(perSecond int) limiter {
	return limiter{rate: float64(perSecond), now: time.Now, buckets: map[string]*bucket{}}
}

// allow takes one token from key's bucket, if it has one.
func (l *limiter) allow(key string) bool {
	if l.rate <= 0 {
		return true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= limiterKeysMax {
			l.dropFull(now)
		}
		b = &bucket{tokens: l.rate, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.rate, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// dropFull forgets the buckets that have refilled: they hold nothing a
// new bucket would not.
func (l *limiter) dropFull(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.rate {
			delete(l.buckets, k)
		}
	}
}
