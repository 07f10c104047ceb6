// Command bankd is one zkbank server: see `bankd --help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/zkbank/zkbank/certs"
	"github.com/zkbank/zkbank/cmd/bankd/internal/api"
	"github.com/zkbank/zkbank/cmd/bankd/internal/metrics"
	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/bankd/internal/peer"
	"github.com/zkbank/zkbank/cmd/internal/tlsconf"
	"github.com/zkbank/zkbank/zkcoord"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "restore" {
		os.Exit(restoreMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	opts, err := parseOptions(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bankd: %v\nRun bankd --help for the flags.\n", err)
		os.Exit(2)
	}
	log := opts.logger(os.Stderr)
	if err := run(opts, log); err != nil {
		log.Error("bankd stopped", "err", err)
		os.Exit(1)
	}
}

func run(o *options, log *slog.Logger) error {
	if !o.keepGOGC {
		debug.SetGCPercent(o.gcPercent)
	}
	mat, err := o.loadTLS(log)
	if err != nil {
		return err
	}
	zkMat, err := o.loadZooKeeperTLS(mat)
	if err != nil {
		return err
	}
	zcfg, err := o.zookeeper(zkMat, log)
	if err != nil {
		return err
	}
	sealing, err := o.sealConfig(mat)
	if err != nil {
		return err
	}
	var self atomic.Pointer[node.Node] // for the peers' revocation check and SIGHUP, once it runs
	if mat != nil {
		defer reloadOnHUP(mat, zkMat, log, func() error {
			if n := self.Load(); n != nil {
				return n.RecordCertificate()
			}
			return nil
		})()
	}
	ln, scheme, err := listen(o.listen, mat)
	if err != nil {
		return err
	}
	advertise := o.advertise
	if advertise == "" {
		advertise = scheme + ln.Addr().String()
	}
	m := metrics.New()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	revoked := func(serial string) bool { n := self.Load(); return n != nil && n.Revoked(serial) }
	n, err := node.Start(ctx, o.nodeConfig(advertise, zcfg, sealing, log, m, mat, peer.Client(mat, revoked)))
	if err != nil {
		ln.Close()
		return err
	}
	self.Store(n)
	m.Watch(n.Status)
	if mat != nil {
		m.WatchTLS(mat.Handshakes)
	}
	if o.debugListen != "" {
		stopDebug, err := serveDebug(o.debugListen, log)
		if err != nil {
			n.Close()
			ln.Close()
			return err
		}
		defer stopDebug()
	}
	handler := api.New(n, api.Config{
		WriteTimeout: o.writeTimeout, ReadTimeout: o.readTimeout, Insecure: o.insecure,
		Internal: peer.Handler(n), MetricsHandle: m.Handler(), Observe: m.Observe,
		RateLimit: o.rateLimit, Logger: log, Count: m.Event,
	})
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second, // bounds the TLS handshake too
		IdleTimeout:       2 * time.Minute,
	}
	srv.RegisterOnShutdown(handler.EndFeeds) // a feed would hold the shutdown for its whole grace
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("serving", "listen", ln.Addr().String(), "advertise", advertise, "zk", o.zk, "root", o.zkRoot)
	select {
	case <-ctx.Done():
		stop() // a second signal kills at once
		log.Info("shutting down: not ready, finishing requests in flight")
	case <-n.Done():
		srv.Close()
		return fmt.Errorf("node failed: %w", n.Err())
	case err := <-serveErr:
		n.Close()
		return fmt.Errorf("http: %w", err)
	}
	return shutdown(srv, n, o.writeTimeout)
}

// serveDebug serves /debug/pprof on its own plain-HTTP listener, apart
// from the API.
func serveDebug(addr string, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--debug-listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	log.Warn("serving /debug/pprof without authentication", "listen", ln.Addr().String())
	return func() { srv.Close() }, nil
}

// nodeConfig is the node's configuration from the options.
func (o *options) nodeConfig(advertise string, zcfg zkcoord.Config, sealing *node.SealConfig, log *slog.Logger, m *metrics.Metrics, mat *tlsconf.Material, peers *http.Client) node.Config {
	var serial func() string
	if mat != nil {
		serial = func() string { return certs.Serial(mat.Leaf()) }
	}
	return node.Config{
		ID: o.id, Addr: advertise, DataDir: o.dataDir,
		ZooKeeper:   zcfg,
		SegmentSize: o.segmentSize, SnapshotEveryEntries: o.snapshotEvery, SnapshotEveryBytes: o.snapshotEveryMB << 20,
		SnapshotRetain: o.snapshotRetain, JournalRetainEntries: o.journalRetain, JournalRetainBytes: o.journalRetainMB << 20, HistoryRetainEntries: o.historyRetain, LogRetainEntries: o.logRetain, LogRetainBytes: o.logRetainMB << 20,
		LogLagMaxBytes: o.logLagMaxMB << 20, TrimInterval: o.trimInterval, BatchCommandsMax: o.batchCommands, BatchBytesMax: o.batchBytes,
		InflightMax: o.inflight, PeerTimeout: o.writeTimeout, Logger: log, Hooks: m.Hooks(),
		Transport: peer.NewTransport(peer.Config{Client: peers, CallTimeout: o.writeTimeout + time.Second, Stage: m.Stage}),
		Serial:    serial,
		Seal:      sealing,
		Clock:     func() time.Time { return time.Now().Add(o.clockOffset) },
	}
}

// shutdown stops taking requests, lets those in flight finish, then closes
// the ZooKeeper session so that a new leader is elected at once.
func shutdown(srv *http.Server, n *node.Node, grace time.Duration) error {
	n.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	herr := srv.Shutdown(ctx)
	if err := n.Close(); err != nil {
		return err
	}
	if herr != nil {
		return fmt.Errorf("http shutdown: %w", herr)
	}
	return nil
}
