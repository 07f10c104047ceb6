// Package metrics exposes a bankd node to Prometheus: requests by route and
// status, latency, applied index, log head, batch sizes, leadership and the
// ZooKeeper session state.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
)

// Metrics is one node's registry.
type Metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	entries    prometheus.Counter
	commands   prometheus.Counter
	batchCmds  prometheus.Histogram
	batchBytes prometheus.Histogram
	stages     *prometheus.HistogramVec
	events     *prometheus.CounterVec
}

// New registers the metrics that events feed; Watch adds the ones read
// from the node.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zkbank_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "zkbank_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route"}),
		entries:  prometheus.NewCounter(prometheus.CounterOpts{Name: "zkbank_entries_applied_total", Help: "Log entries applied."}),
		commands: prometheus.NewCounter(prometheus.CounterOpts{Name: "zkbank_commands_applied_total", Help: "Commands applied."}),
		batchCmds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "zkbank_batch_commands", Help: "Commands per appended log entry (leader).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		batchBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "zkbank_batch_bytes", Help: "Estimated bytes per appended log entry (leader).",
			Buckets: prometheus.ExponentialBuckets(256, 4, 8),
		}),
		stages: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "zkbank_stage_duration_seconds",
			Help:    "Time in the write path's stages: forward_wait and forward_call (follower: queued behind forwards in flight; one call to the leader), batch_wait (leader: queued until its entry is sent), log_append (leader: append sent to confirmed by ZooKeeper), journal_sync (a synced journal batch), snapshot_capture (the replica loop streaming a snapshot).",
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 16),
		}, []string{"stage"}),
	}
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zkbank_auth_events_total",
		Help: "Requests the API refused before they did anything (kind refused, by code: unauthenticated, forbidden, rate_limited) and admin actions (kind admin, by action).",
	}, []string{"kind", "what"})
	m.reg.MustRegister(m.requests, m.latency, m.entries, m.commands, m.batchCmds, m.batchBytes, m.stages, m.events,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Observe records one HTTP request.
func (m *Metrics) Observe(route string, status int, took time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(took.Seconds())
}

// Hooks feed the node's events into the metrics.
func (m *Metrics) Hooks() node.Hooks {
	return node.Hooks{
		EntryApplied: func(_ uint64, commands int) {
			m.entries.Inc()
			m.commands.Add(float64(commands))
		},
		BatchSent: func(commands, bytes int) {
			m.batchCmds.Observe(float64(commands))
			m.batchBytes.Observe(float64(bytes))
		},
		Stage: m.Stage,
	}
}

// Event counts a refusal or an admin action (api.Config.Count).
func (m *Metrics) Event(kind, what string) { m.events.WithLabelValues(kind, what).Inc() }

// Stage records how long a stage of the write path took (node.Hooks and
// api.Config both report here).
func (m *Metrics) Stage(stage string, took time.Duration) {
	m.stages.WithLabelValues(stage).Observe(took.Seconds())
}

// Watch adds gauges read from the node's status at scrape time.
func (m *Metrics) Watch(status func() node.Status) {
	gauge := func(name, help string, f func(node.Status) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(status()) })
	}
	m.reg.MustRegister(
		gauge("zkbank_applied_index", "Last log index applied to the engine.", func(s node.Status) float64 { return float64(s.Applied) }),
		gauge("zkbank_log_head", "Last log index appended (leader) or applied (follower).", func(s node.Status) float64 {
			return float64(max(s.AppendHead, s.Applied))
		}),
		gauge("zkbank_snapshot_index", "Index of the newest snapshot on disk.", func(s node.Status) float64 { return float64(s.SnapshotIndex) }),
		gauge("zkbank_key_store_bytes", "Disk taken by the idempotency records older than the in-memory window (<data dir>/keys/).",
			func(s node.Status) float64 { return float64(s.KeyDiskBytes) }),
		gauge("zkbank_history_bytes", "Disk taken by the history of applied commands (<data dir>/history/).",
			func(s node.Status) float64 { return float64(s.HistoryDiskBytes) }),
		gauge("zkbank_history_from", "The first log index this node's history holds (statements and the change feed start there).",
			func(s node.Status) float64 { return float64(s.HistoryFrom) }),
		gauge("zkbank_keys_in_memory", "Idempotency records in the in-memory window.", func(s node.Status) float64 { return float64(s.Keys.Held) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zkbank_entries_pushed_total",
			Help: "Entries a follower took from the leader's push stream instead of reading them from ZooKeeper."},
			func() float64 { return float64(status().Pushed) }),
		gauge("zkbank_leader", "1 while this node leads.", func(s node.Status) float64 { return b2f(s.Leader) }),
		gauge("zkbank_log_stalled_index", "Index of the log entry this node waits on because it does not verify; 0 when none.", func(s node.Status) float64 {
			if s.Stalled == nil {
				return 0
			}
			return float64(s.Stalled.Index)
		}),
		gauge("zkbank_ready", "1 while this node is ready.", func(s node.Status) float64 { return b2f(s.Ready) }),
		gauge("zkbank_zookeeper_session_connected", "1 while the ZooKeeper session is established.", func(s node.Status) float64 {
			return b2f(s.Session == "StateHasSession")
		}),
	)
}

// WatchTLS adds the server's TLS handshakes, full and resumed: a high
// full rate means clients do not keep their connections alive (each
// full handshake costs a signature and a key exchange).
func (m *Metrics) WatchTLS(handshakes func() (full, resumed uint64)) {
	for _, kind := range []string{"full", "resumed"} {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "zkbank_tls_handshakes_total", Help: "TLS handshakes the API server completed, by kind (full or resumed).",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 {
			full, resumed := handshakes()
			if kind == "full" {
				return float64(full)
			}
			return float64(resumed)
		}))
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
