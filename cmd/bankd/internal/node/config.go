// Package node is one zkbank server without its HTTP face: it restarts from
// its data dir, tails the ZooKeeper log into the journal and the engine,
// leads when elected (batching commands into fenced appends), takes
// snapshots, trims the log, and catches up from a peer's snapshot when the
// entries it needs were trimmed.
//
// Goroutines: the replica loop is the only writer of the engine; readers
// take a read lock. While leading, one batcher goroutine owns the appender.
package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/zkcoord"
)

// Config configures a Node. Zero values take the defaults documented on
// each field.
type Config struct {
	ID        string // stable node id, unique in the cluster
	Addr      string // base URL of this node's API as peers reach it
	DataDir   string
	ZooKeeper zkcoord.Config
	Engine    engine.Config // must be the same on every node
	// SegmentSize is the number of log entries per ZooKeeper segment; the
	// same on every node (default zkcoord.DefaultSegmentSize).
	SegmentSize uint64

	SnapshotEveryEntries uint64 // entries between snapshots (default 10,000)
	SnapshotEveryBytes   uint64 // or log bytes between snapshots, whichever comes first (default 32 MiB)
	SnapshotRetain       int    // snapshot files kept (default 3)
	LogRetainEntries     uint64 // entries kept in ZooKeeper below the trim point (default 10,000)
	LogRetainBytes       uint64 // and at most so many bytes of them (default 32 MiB)
	// LogLagMaxBytes is how much log ZooKeeper keeps for a live member
	// that lags behind the newest entry; one further behind installs a
	// snapshot instead (default 128 MiB). With the two limits above it
	// bounds ZooKeeper's memory: every server holds the log in its heap.
	LogLagMaxBytes uint64
	TrimInterval   time.Duration // how often the leader trims (default 5s)

	BatchCommandsMax int           // commands per log entry (default 4096)
	BatchBytesMax    int           // estimated bytes per log entry (default 512 KiB)
	InflightMax      int           // appends in flight (default 8)
	QueueMax         int           // requests waiting for the batcher (default 10,000)
	ProgressInterval time.Duration // membership progress updates (default 500ms)

	Logger *slog.Logger
	Client *http.Client // for peer snapshot transfer (default: 60s timeout)
	Hooks  Hooks
}

// Hooks receive events for metrics; each may be nil. They run on the
// node's goroutines and must not block.
type Hooks struct {
	EntryApplied func(index uint64, commands int)
	BatchSent    func(commands, bytes int)
	// Stage reports how long a stage of the write path took: StageBatchWait,
	// StageLogAppend, StageJournalSync or StageSnapshotCapture.
	Stage func(stage string, took time.Duration)
}

// Stages reported to Hooks.Stage.
const (
	StageBatchWait       = "batch_wait"
	StageLogAppend       = "log_append"
	StageJournalSync     = "journal_sync"
	StageSnapshotCapture = "snapshot_capture"
)

func (h Hooks) stage(stage string, started time.Time) {
	if h.Stage != nil {
		h.Stage(stage, time.Since(started))
	}
}

// Limits that a configuration may not exceed.
const (
	batchCommandsLimit = engine.EntryCommandsMax
	batchBytesLimit    = engine.EntryBytesMax - 64<<10 // room for the envelope
)

func (c *Config) withDefaults() error {
	setDefault(&c.SegmentSize, zkcoord.DefaultSegmentSize)
	setDefault(&c.SnapshotEveryEntries, 10_000)
	setDefault(&c.SnapshotRetain, 3)
	setDefault(&c.LogRetainEntries, 10_000)
	setDefault(&c.SnapshotEveryBytes, 32<<20)
	setDefault(&c.LogRetainBytes, 32<<20)
	setDefault(&c.LogLagMaxBytes, 128<<20)
	setDefault(&c.TrimInterval, 5*time.Second)
	setDefault(&c.BatchCommandsMax, 4096)
	setDefault(&c.BatchBytesMax, 512<<10)
	setDefault(&c.InflightMax, 8)
	setDefault(&c.QueueMax, 10_000)
	setDefault(&c.ProgressInterval, 500*time.Millisecond)
	if c.Engine == (engine.Config{}) {
		c.Engine = engine.DefaultConfig()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 60 * time.Second}
	}
	return c.validate()
}

func (c *Config) validate() error {
	switch {
	case c.ID == "":
		return errors.New("node: id is empty")
	case c.Addr == "":
		return errors.New("node: advertised address is empty")
	case c.DataDir == "":
		return errors.New("node: data dir is empty")
	case c.BatchCommandsMax > batchCommandsLimit:
		return fmt.Errorf("node: batch commands %d over the limit %d", c.BatchCommandsMax, batchCommandsLimit)
	case c.BatchBytesMax > batchBytesLimit:
		return fmt.Errorf("node: batch bytes %d over the limit %d", c.BatchBytesMax, batchBytesLimit)
	}
	return c.Engine.Validate()
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// batchSent reports an appended entry and how long its requests waited.
func (h Hooks) batchSent(reqs []*request, commands, bytes int) {
	if h.BatchSent != nil {
		h.BatchSent(commands, bytes)
	}
	for _, r := range reqs {
		h.stage(StageBatchWait, r.queued)
	}
}
