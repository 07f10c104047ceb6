package main

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/zkbank/zkbank/cmd/internal/tlsconf"
	"github.com/zkbank/zkbank/zkcoord"
)

// zkFiles names the TLS material bankd shows ZooKeeper: the node's own
// unless a --zk-tls-* flag replaces a part. With --insecure and none of
// those flags: none (plaintext).
func (o *options) zkFiles() (f tlsconf.Files, ok bool, err error) {
	if o.insecure && o.zkTLSCA == "" {
		return f, false, nil
	}
	if !o.insecure {
		if f, err = o.tlsFiles(); err != nil {
			return f, false, err
		}
	}
	for _, kv := range []struct {
		dst *string
		v   string
	}{{&f.Cert, o.zkTLSCert}, {&f.Key, o.zkTLSKey}, {&f.CA, o.zkTLSCA}} {
		if kv.v != "" {
			*kv.dst = kv.v
		}
	}
	if f.CA == "" || (f.Cert == "") != (f.Key == "") {
		return f, false, errors.New("ZooKeeper over TLS needs --zk-tls-ca, and --zk-tls-cert with --zk-tls-key (or the node's --certs-dir)")
	}
	return f, true, nil
}

// zkAuth is the digest credentials file: --zk-auth-file, else
// zookeeper.auth in --certs-dir; none with --insecure and neither.
func (o *options) zkAuth() string {
	if o.zkAuthFile == "" && o.certsDir != "" {
		return filepath.Join(o.certsDir, zkcoord.AuthFile)
	}
	return o.zkAuthFile
}

// zookeeper is the ZooKeeper side of the node's configuration: TLS with
// zkMat, digest credentials, and an open namespace allowed with
// --insecure alone.
func (o *options) zookeeper(zkMat *tlsconf.Material, log *slog.Logger) (zkcoord.Config, error) {
	cfg := zkcoord.Config{Servers: o.servers(), Root: o.zkRoot, SessionTimeout: o.sessionTimeout, Logger: log, AllowOpen: o.insecure}
	if zkMat != nil {
		cfg.TLS = zkMat.Client(nil)
	}
	switch file := o.zkAuth(); {
	case file != "":
		auth, err := zkcoord.ParseAuth(file)
		if err != nil {
			return cfg, err
		}
		cfg.Auth = auth
	case !o.insecure:
		return cfg, errors.New("bankd needs ZooKeeper digest credentials: give --zk-auth-file (user:password, mode 0600), or zookeeper.auth in --certs-dir")
	}
	if cfg.TLS == nil && !o.insecure {
		return cfg, fmt.Errorf("bankd talks to ZooKeeper over TLS only, unless --insecure")
	}
	return cfg, nil
}

// loadZooKeeperTLS is the material bankd shows ZooKeeper: mat itself when
// the files are the node's, else its own (nil: plaintext).
func (o *options) loadZooKeeperTLS(mat *tlsconf.Material) (*tlsconf.Material, error) {
	f, ok, err := o.zkFiles()
	if err != nil || !ok {
		return nil, err
	}
	if mat != nil {
		if nf, _ := o.tlsFiles(); nf == f {
			return mat, nil
		}
	}
	m, err := tlsconf.Load(f)
	if err != nil {
		return nil, fmt.Errorf("ZooKeeper TLS: %w", err)
	}
	return m, nil
}
