package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/zkbank/zkbank/certs"
	"github.com/zkbank/zkbank/cmd/internal/tlsconf"
)

// errNoTLS: bankd serves HTTPS only, unless told --insecure.
var errNoTLS = errors.New("bankd serves HTTPS only: give --certs-dir (or --tls-cert, --tls-key and --tls-ca), or run with --insecure for a test on one machine")

// tlsFiles names the node's TLS material: --certs-dir's files by their
// names (ca.crt, node-<id>.crt, node-<id>.key), each replaced by its own
// flag when given.
func (o *options) tlsFiles() (tlsconf.Files, error) {
	var f tlsconf.Files
	if o.certsDir != "" {
		f.CA = filepath.Join(o.certsDir, certs.CAFile)
		f.Cert, f.Key = certs.NodeFiles(o.certsDir, o.id)
	}
	for _, kv := range []struct {
		dst *string
		v   string
	}{{&f.Cert, o.tlsCert}, {&f.Key, o.tlsKey}, {&f.CA, o.tlsCA}} {
		if kv.v != "" {
			*kv.dst = kv.v
		}
	}
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return f, errNoTLS
	}
	return f, nil
}

// loadTLS reads the node's TLS material, nil with --insecure. The
// certificate must be a node certificate for this node's id.
func (o *options) loadTLS(log *slog.Logger) (*tlsconf.Material, error) {
	if o.insecure {
		log.Warn("INSECURE: --insecure given: plain HTTP, no certificates, every caller trusted; never run a bank like this")
		return nil, nil
	}
	files, err := o.tlsFiles()
	if err != nil {
		return nil, err
	}
	return tlsconf.LoadNode(files, o.id)
}

// reloadOnHUP re-reads the TLS material on every SIGHUP; connections and
// requests in flight keep what they had, new handshakes take the new.
// Then reloaded runs (the node records its new certificate).
func reloadOnHUP(mat, zkMat *tlsconf.Material, log *slog.Logger, reloaded func() error) func() {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				if err := mat.Reload(); err != nil {
					log.Error("SIGHUP: the TLS files do not load; keeping the ones in use", "err", err)
					continue
				}
				log.Info("SIGHUP: reloaded the TLS certificate, key and CA bundle", "serial", certs.Serial(mat.Leaf()))
				if zkMat != nil && zkMat != mat {
					if err := zkMat.Reload(); err != nil {
						log.Error("SIGHUP: the ZooKeeper TLS files do not load; keeping the ones in use", "err", err)
					}
				}
				if err := reloaded(); err != nil {
					log.Error("SIGHUP: the registry does not record the new certificate; removing this node would not revoke it", "err", err)
				}
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(hup); close(done) }
}

// listen opens the API's listener: TLS over TCP, or plain TCP with
// --insecure.
func listen(addr string, mat *tlsconf.Material) (net.Listener, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("listen on %s: %w", addr, err)
	}
	if mat == nil {
		return ln, "http://", nil
	}
	return tls.NewListener(ln, mat.Server()), "https://", nil
}
