package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/api"
	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
)

// options are bankd's settings, from flags, BANKD_* variables or the
// --config file.
type options struct {
	config, id, dataDir, zk, zkRoot, listen       string
	advertise                                     string
	certsDir, tlsCert, tlsKey, tlsCA, debugListen string
	zkAuthFile, zkTLSCA, zkTLSCert, zkTLSKey      string
	dataKeys, clusterID                           string
	insecure                                      bool
	clockOffset                                   time.Duration
	sessionTimeout, writeTimeout, readTimeout     time.Duration
	trimInterval                                  time.Duration
	snapshotEvery, logRetain, segmentSize         uint64
	journalRetain                                 uint64
	snapshotEveryMB, logRetainMB, logLagMaxMB     uint64
	journalRetainMB, historyRetain                uint64
	snapshotRetain                                int
	batchCommands, batchBytes, inflight           int
	gcPercent, rateLimit                          int
	keepGOGC                                      bool // GOGC is set: leave the runtime's setting
	logLevel, logFormat                           string
}

const usageHeader = `bankd: one zkbank server.

It keeps accounts in a local data dir (journal + snapshots), follows the
operations log in ZooKeeper, leads when elected, and serves the HTTP API.

Usage: bankd --id ID --data-dir DIR [flags]
       bankd --config FILE [flags]
       bankd restore --config FILE [--backup FILE] [flags]   (bankd restore --help)

Every flag can also be set with an environment variable, BANKD_ and the
flag name in capitals with _ for - (BANKD_DATA_DIR), or in the --config
file, by its name (data-dir = "/var/lib/zkbank"). A flag wins over the
variable, the variable over the file.

Flags:
`

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	return parseOptionsOf(args, stderr, usageHeader, nil)
}

// parseOptionsOf parses bankd's flags, and more that more defines (a
// subcommand's), under a usage header of its own.
func parseOptionsOf(args []string, stderr io.Writer, header string, more func(*flag.FlagSet)) (*options, error) {
	o := &options{}
	fs := newFlagSet(o, stderr)
	if more != nil {
		more(fs)
	}
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), header)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	path := configPath(fs, os.LookupEnv)
	var file map[string]string
	if path != "" {
		var err error
		if file, err = readConfig(path, fs); err != nil {
			return nil, err
		}
	}
	if err := fillFlags(fs, os.LookupEnv, file, path); err != nil {
		return nil, err
	}
	_, gcInFile := file["gc-percent"]
	o.keepGOGC = gogcWins(fs, os.LookupEnv) && !gcInFile
	return o, o.validate()
}

// newFlagSet defines bankd's flags on o, with their defaults from
// node.DefaultConfig and api.DefaultConfig: the one place defaults live.
func newFlagSet(o *options, stderr io.Writer) *flag.FlagSet {
	def, adef := node.DefaultConfig(), api.DefaultConfig()
	fs := flag.NewFlagSet("bankd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.config, "config", "", "TOML file of settings, one per flag, named as the flag without -- (deploy/bankd/*.toml); flags and BANKD_* variables win over it")
	fs.StringVar(&o.id, "id", "", "node id, unique in the cluster (required; letters, digits, - and _)")
	fs.StringVar(&o.dataDir, "data-dir", "", "data directory for the journal and snapshots (required)")
	fs.StringVar(&o.zk, "zk", strings.Join(def.ZooKeeper.Servers, ","), "ZooKeeper servers, comma-separated host:port")
	fs.StringVar(&o.zkRoot, "zk-root", def.ZooKeeper.Root, "ZooKeeper namespace of this bank")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "HTTPS listen address of the API and of the calls between nodes")
	fs.StringVar(&o.advertise, "advertise", "", "base URL peers use to reach this node (default https://<listen>)")
	fs.StringVar(&o.certsDir, "certs-dir", "", "directory of bankctl certs: ca.crt, node-<id>.crt and node-<id>.key (each replaced by its own flag)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "this node's certificate (PEM), a node certificate for --id")
	fs.StringVar(&o.tlsKey, "tls-key", "", "its private key (PEM)")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "the cluster's CA bundle (PEM): peers and clients must chain to it")
	fs.StringVar(&o.zkAuthFile, "zk-auth-file", "", "file (mode 0600) of the ZooKeeper digest credentials user:password that every znode of the bank is locked to (default zookeeper.auth in --certs-dir)")
	fs.StringVar(&o.zkTLSCA, "zk-tls-ca", "", "CA bundle the ZooKeeper servers' certificates chain to (default --tls-ca)")
	fs.StringVar(&o.zkTLSCert, "zk-tls-cert", "", "certificate bankd shows ZooKeeper (default --tls-cert)")
	fs.StringVar(&o.zkTLSKey, "zk-tls-key", "", "its private key (default --tls-key)")
	fs.StringVar(&o.dataKeys, "data-keys", "", "file (mode 0600) of the cluster's data keys that seal the log, a line \"<id> <64 hex>\" each, the same on every node (default data.keys in --certs-dir)")
	fs.StringVar(&o.clusterID, "cluster-id", "", "the cluster's id (32 hex digits) that every log signature covers (default: the file cluster.id in --certs-dir)")
	fs.BoolVar(&o.insecure, "insecure", false, "serve plain HTTP and trust every caller, talk plaintext to an open ZooKeeper namespace unless --zk-tls-* and --zk-auth-file say otherwise: for a test on one machine only; bankd says so loudly")
	fs.StringVar(&o.debugListen, "debug-listen", "", "address of a plain-HTTP listener for /debug/pprof (off by default; keep it on loopback)")
	fs.DurationVar(&o.sessionTimeout, "session-timeout", def.ZooKeeper.SessionTimeout, "ZooKeeper session timeout: a dead leader is replaced after about this long")
	fs.DurationVar(&o.writeTimeout, "write-timeout", adef.WriteTimeout, "how long a write waits for a leader before answering 503 no_leader")
	fs.DurationVar(&o.readTimeout, "read-timeout", adef.ReadTimeout, "how long a read waits for min_index before answering 504 timeout")
	fs.IntVar(&o.rateLimit, "rate-limit", adef.RateLimit, "requests a second one principal may send to this node (as many at once), then 429 rate_limited; 0: no limit")
	fs.Uint64Var(&o.snapshotEvery, "snapshot-every", def.SnapshotEveryEntries, "log entries between snapshots")
	fs.Uint64Var(&o.snapshotEveryMB, "snapshot-every-mb", def.SnapshotEveryBytes>>20, "or MiB of log entries between snapshots, whichever comes first")
	fs.IntVar(&o.snapshotRetain, "snapshot-retain", def.SnapshotRetain, "snapshot files kept")
	fs.Uint64Var(&o.journalRetain, "journal-retain", 0, "log entries this node's journal keeps below its newest (never below its oldest snapshot); 0: every entry, forever (about 80 MB per million commands)")
	fs.Uint64Var(&o.historyRetain, "history-retain", 0, "log entries whose commands this node's history keeps below its newest, for statements and the change feed (never below its oldest snapshot); 0: all, forever (about 36 MB per million commands)")
	fs.Uint64Var(&o.journalRetainMB, "journal-retain-mb", 0, "and at most this many MiB of them (never below its oldest snapshot); 0: no bound")
	fs.Uint64Var(&o.logRetain, "log-retain", def.LogRetainEntries, "entries kept in ZooKeeper below what every node has (leader trims the rest)")
	fs.Uint64Var(&o.logRetainMB, "log-retain-mb", def.LogRetainBytes>>20, "and at most this many MiB of them")
	fs.Uint64Var(&o.logLagMaxMB, "log-lag-max-mb", def.LogLagMaxBytes>>20, "MiB of log kept in ZooKeeper for a node that lags; one further behind installs a snapshot (bounds ZooKeeper's heap)")
	fs.DurationVar(&o.trimInterval, "trim-interval", def.TrimInterval, "how often the leader trims the log in ZooKeeper")
	fs.Uint64Var(&o.segmentSize, "segment-size", def.SegmentSize, "log entries per ZooKeeper segment (same on every node)")
	fs.IntVar(&o.batchCommands, "batch-commands", def.BatchCommandsMax, "most commands in one log entry")
	fs.IntVar(&o.batchBytes, "batch-bytes", def.BatchBytesMax, "most bytes in one log entry (under ZooKeeper's 1 MB limit)")
	fs.IntVar(&o.inflight, "inflight", def.InflightMax, "log appends in flight at once")
	fs.IntVar(&o.gcPercent, "gc-percent", defaultGCPercent, "how far (percent) the heap may grow above live data before the Go collector runs; GOGC in the environment replaces the default")
	fs.DurationVar(&o.clockOffset, "test-clock-offset", 0, "FOR TESTS ONLY: shift this node's wall clock by this much (e.g. 5m or -5m) where it stamps entries as leader; stamps stay within a second of ZooKeeper's clock whatever it is")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json")
	return fs
}

// defaultGCPercent is below Go's 100 because bankd's heap is mostly
// long-lived state (accounts, the key window): at 100 a node holding a
// million accounts would sit near twice that state in resident memory.
// The collector then runs more often, but most of the state holds no
// pointers, so each run is cheap (docs/benchmarks.md).
const defaultGCPercent = 50

// gogcWins reports whether GOGC is in the environment and neither
// --gc-percent nor BANKD_GC_PERCENT was given: the runtime's setting then
// stays.
func gogcWins(fs *flag.FlagSet, lookup func(string) (string, bool)) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "gc-percent" })
	_, env := lookup("BANKD_GC_PERCENT")
	_, gogc := lookup("GOGC")
	return gogc && !given && !env
}

func (o *options) validate() error {
	switch {
	case o.id == "":
		return errors.New("--id is required")
	case strings.Trim(o.id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" || len(o.id) > 64:
		return fmt.Errorf("--id %q: use up to 64 letters, digits, - and _", o.id)
	case o.dataDir == "":
		return errors.New("--data-dir is required")
	case o.zk == "":
		return errors.New("--zk is empty")
	case !strings.HasPrefix(o.zkRoot, "/") || len(o.zkRoot) < 2 || strings.HasSuffix(o.zkRoot, "/"):
		return fmt.Errorf("--zk-root %q: use an absolute path like /zkbank", o.zkRoot)
	case o.sessionTimeout < time.Second || o.sessionTimeout > 60*time.Second:
		return fmt.Errorf("--session-timeout %v: use 1s to 60s", o.sessionTimeout)
	case o.writeTimeout <= 0 || o.readTimeout <= 0 || o.trimInterval <= 0:
		return errors.New("--write-timeout, --read-timeout and --trim-interval must be positive")
	case o.snapshotEvery == 0 || o.snapshotRetain < 1 || o.segmentSize == 0 || o.segmentSize > 60_000:
		return errors.New("--snapshot-every and --snapshot-retain must be at least 1, --segment-size 1 to 60000")
	case !inMiBRange(o.snapshotEveryMB) || !inMiBRange(o.logRetainMB) || !inMiBRange(o.logLagMaxMB):
		return errors.New("--snapshot-every-mb, --log-retain-mb and --log-lag-max-mb must be 1 to 1048576")
	case o.journalRetainMB > 1<<20:
		return errors.New("--journal-retain-mb must be 0 (no bound) to 1048576")
	case o.batchCommands < 1 || o.batchBytes < 1024 || o.inflight < 1:
		return errors.New("--batch-commands and --inflight must be at least 1, --batch-bytes at least 1024")
	case o.gcPercent < 1 || o.gcPercent > 1000:
		return fmt.Errorf("--gc-percent %d: use 1 to 1000", o.gcPercent)
	case o.rateLimit < 0:
		return fmt.Errorf("--rate-limit %d: use 0 (no limit) or more", o.rateLimit)
	}
	if !o.insecure {
		if _, err := o.tlsFiles(); err != nil {
			return err
		}
	}
	if _, _, err := o.zkFiles(); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return fmt.Errorf("--listen %q: %w", o.listen, err)
	}
	for _, s := range strings.Split(o.zk, ",") {
		if _, _, err := net.SplitHostPort(strings.TrimSpace(s)); err != nil {
			return fmt.Errorf("--zk server %q: %w", s, err)
		}
	}
	if _, err := o.level(); err != nil {
		return err
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return fmt.Errorf("--log-format %q: use text or json", o.logFormat)
	}
	return nil
}

func (o *options) level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(o.logLevel)); err != nil {
		return 0, fmt.Errorf("--log-level %q: use debug, info, warn or error", o.logLevel)
	}
	return l, nil
}

func (o *options) logger(w io.Writer) *slog.Logger {
	level, _ := o.level()
	hopts := &slog.HandlerOptions{Level: level}
	if o.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, hopts)).With("node", o.id)
	}
	return slog.New(slog.NewTextHandler(w, hopts)).With("node", o.id)
}

func (o *options) servers() []string {
	var out []string
	for _, s := range strings.Split(o.zk, ",") {
		out = append(out, strings.TrimSpace(s))
	}
	return out
}

// inMiBRange: a size flag in MiB from 1 MiB to 1 TiB.
func inMiBRange(mb uint64) bool { return mb >= 1 && mb <= 1<<20 }

// flagTable is the table of bankd's flags in docs/operations.md, made from
// the flag set itself so that the docs cannot drift from the defaults.
func flagTable() string {
	fs := newFlagSet(&options{}, io.Discard)
	var b strings.Builder
	b.WriteString("| flag | default | what |\n|---|---|---|\n")
	fs.VisitAll(func(f *flag.Flag) {
		def := "`" + f.DefValue + "`"
		if f.DefValue == "" {
			def = "(none)"
		}
		fmt.Fprintf(&b, "| `--%s` | %s | %s |\n", f.Name, def, strings.ReplaceAll(f.Usage, "|", `\|`))
	})
	return b.String()
}
