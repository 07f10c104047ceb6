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
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/seal"
	"github.com/zkbank/zkbank/zkcoord"
)

// Config configures a Node. Zero values take DefaultConfig's.
type Config struct {
	ID        string // stable node id, unique in the cluster
	Addr      string // this node's address as peers reach it (the Transport's)
	DataDir   string
	ZooKeeper zkcoord.Config
	Engine    engine.Config // must be the same on every node
	// SegmentSize is the number of log entries per ZooKeeper segment; the
	// same on every node.
	SegmentSize uint64

	SnapshotEveryEntries uint64 // entries between snapshots
	SnapshotEveryBytes   uint64 // or log bytes between snapshots, whichever comes first
	SnapshotRetain       int    // snapshot files kept
	// JournalRetainEntries is how many entries below the newest applied
	// the local journal keeps; it never trims past the oldest snapshot
	// kept, which a restart may need. 0, the default: every entry (the
	// audit trail).
	JournalRetainEntries uint64
	// JournalRetainBytes bounds the journal's entries on disk as well
	// (Pebble's estimate), the same way; 0: no bound.
	JournalRetainBytes uint64
	// HistoryRetainEntries is how many entries below the newest applied
	// the history keeps the events of (statements and feeds start there),
	// never trimming past the oldest snapshot kept; 0: all of them.
	HistoryRetainEntries uint64
	LogRetainEntries     uint64 // entries kept in ZooKeeper below the trim point
	LogRetainBytes       uint64 // and at most so many bytes of them
	// LogLagMaxBytes is how much log ZooKeeper keeps for a live member
	// that lags behind the newest entry; one further behind installs a
	// snapshot instead. With the two limits above it bounds ZooKeeper's
	// memory: every server holds the log in its heap.
	LogLagMaxBytes uint64
	TrimInterval   time.Duration // how often the leader trims

	BatchCommandsMax int           // commands per log entry
	BatchBytesMax    int           // estimated bytes per log entry
	InflightMax      int           // appends in flight
	QueueMax         int           // requests waiting for the batcher
	ProgressInterval time.Duration // membership progress updates

	// BodyVersionMax is the newest body version this node reads and
	// writes: engine.BodyVersionMax, unless a test runs it as an older
	// binary.
	BodyVersionMax uint32

	Transport       Transport     // how this node reaches the others (required)
	PeerTimeout     time.Duration // one call to the leader for a read index
	SnapshotTimeout time.Duration // one snapshot download from a peer; a key store download fails after this long without a byte

	// Serial is the serial of the certificate this node presents to its
	// peers, read at each use (SIGHUP may change it); nil without TLS. The
	// registry keeps it so that removing the node revokes it, and a node
	// whose certificate is revoked stops.
	Serial func() string

	// Seal, when set, seals the log (body version 3): entries encrypted
	// with the cluster's data keys and signed by their epoch's leader.
	// Without it the node reads and writes body version 2 at most.
	Seal *SealConfig
	// Clock stamps the entries this node writes as leader (time.Now; a
	// test skews it). The engine judges expiry by these stamps, never by
	// a receiving node's clock.
	Clock func() time.Time

	Logger *slog.Logger
	Hooks  Hooks
}

// SealConfig is what a node seals and verifies the log with.
type SealConfig struct {
	Trust *seal.Trust
	// Identity is the key and certificate (DER) this node signs with as
	// leader, read when each term begins (SIGHUP may change them).
	Identity func() (crypto.Signer, []byte)
}

// DefaultConfig is the configuration bankd runs with unless told
// otherwise: bankd's flags take their defaults from it, and a test holds
// docs/operations.md to them.
func DefaultConfig() Config {
	return Config{
		ZooKeeper:   zkcoord.Config{Servers: []string{"127.0.0.1:2181"}, Root: zkcoord.DefaultRoot, SessionTimeout: zkcoord.DefaultSessionTimeout},
		Engine:      engine.DefaultConfig(),
		SegmentSize: zkcoord.DefaultSegmentSize,

		SnapshotEveryEntries: 10_000,
		SnapshotEveryBytes:   32 << 20,
		SnapshotRetain:       3,
		LogRetainEntries:     10_000,
		LogRetainBytes:       32 << 20,
		LogLagMaxBytes:       128 << 20,
		TrimInterval:         5 * time.Second,

		BatchCommandsMax: 4096,
		BatchBytesMax:    512 << 10,
		InflightMax:      8,
		QueueMax:         10_000,
		ProgressInterval: 500 * time.Millisecond,

		BodyVersionMax:  engine.BodyVersionMax,
		PeerTimeout:     10 * time.Second,
		SnapshotTimeout: 60 * time.Second,
	}
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
	def := DefaultConfig()
	setDefault(&c.SegmentSize, def.SegmentSize)
	setDefault(&c.SnapshotEveryEntries, def.SnapshotEveryEntries)
	setDefault(&c.SnapshotEveryBytes, def.SnapshotEveryBytes)
	setDefault(&c.SnapshotRetain, def.SnapshotRetain)
	setDefault(&c.LogRetainEntries, def.LogRetainEntries)
	setDefault(&c.LogRetainBytes, def.LogRetainBytes)
	setDefault(&c.LogLagMaxBytes, def.LogLagMaxBytes)
	setDefault(&c.TrimInterval, def.TrimInterval)
	setDefault(&c.BatchCommandsMax, def.BatchCommandsMax)
	setDefault(&c.BatchBytesMax, def.BatchBytesMax)
	setDefault(&c.InflightMax, def.InflightMax)
	setDefault(&c.QueueMax, def.QueueMax)
	setDefault(&c.ProgressInterval, def.ProgressInterval)
	setDefault(&c.PeerTimeout, def.PeerTimeout)
	setDefault(&c.BodyVersionMax, def.BodyVersionMax)
	if c.Seal == nil {
		c.BodyVersionMax = min(c.BodyVersionMax, engine.BodyV2)
	}
	setDefault(&c.SnapshotTimeout, def.SnapshotTimeout)
	if c.Engine == (engine.Config{}) {
		c.Engine = def.Engine
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = time.Now
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
	case c.Transport == nil:
		return errors.New("node: no transport to reach the other nodes")
	case c.BodyVersionMax > engine.BodyVersionMax:
		return fmt.Errorf("node: body version %d is newer than this binary reads (%d)", c.BodyVersionMax, engine.BodyVersionMax)
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
