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
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/zkbank/zkbank/cmd/bankd/internal/api"
	"github.com/zkbank/zkbank/cmd/bankd/internal/metrics"
	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/bankd/internal/peer"
	"github.com/zkbank/zkbank/zkcoord"
)

func main() {
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
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	advertise := o.advertise
	if advertise == "" {
		advertise = "http://" + ln.Addr().String()
	}
	m := metrics.New()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	n, err := node.Start(ctx, o.nodeConfig(advertise, log, m))
	if err != nil {
		ln.Close()
		return err
	}
	m.Watch(n.Status)
	srv := &http.Server{
		Handler: api.New(n, api.Config{
			WriteTimeout: o.writeTimeout, ReadTimeout: o.readTimeout,
			Internal: peer.Handler(n), MetricsHandle: m.Handler(), Observe: m.Observe,
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
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

// nodeConfig is the node's configuration from the options.
func (o *options) nodeConfig(advertise string, log *slog.Logger, m *metrics.Metrics) node.Config {
	return node.Config{
		ID: o.id, Addr: advertise, DataDir: o.dataDir,
		ZooKeeper:   zkcoord.Config{Servers: o.servers(), Root: o.zkRoot, SessionTimeout: o.sessionTimeout, Logger: log},
		SegmentSize: o.segmentSize, SnapshotEveryEntries: o.snapshotEvery, SnapshotEveryBytes: o.snapshotEveryMB << 20,
		SnapshotRetain: o.snapshotRetain, LogRetainEntries: o.logRetain, LogRetainBytes: o.logRetainMB << 20,
		LogLagMaxBytes: o.logLagMaxMB << 20, TrimInterval: o.trimInterval, BatchCommandsMax: o.batchCommands, BatchBytesMax: o.batchBytes,
		InflightMax: o.inflight, PeerTimeout: o.writeTimeout, Logger: log, Hooks: m.Hooks(),
		Transport: peer.NewTransport(peer.Config{CallTimeout: o.writeTimeout + time.Second, Stage: m.Stage}),
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
