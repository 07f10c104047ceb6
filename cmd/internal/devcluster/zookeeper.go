package devcluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zkbank/zkbank/certs"
	"github.com/zkbank/zkbank/cmd/internal/tlsconf"
	"github.com/zkbank/zkbank/seal"
	"github.com/zkbank/zkbank/zkcoord"
	"github.com/zkbank/zkbank/zkcoord/zkserver"
)

// ZooKeeperSuperFile holds the dev cluster's ZooKeeper super password
// (for an operator's zkCli), in its certs directory; bankd's own digest
// credentials are zkcoord.AuthFile there.
const ZooKeeperSuperFile = "zookeeper.super"

// zkName is the name of ZooKeeper server i (1-based) and its certificate.
func zkName(i int) string { return fmt.Sprintf("zk%d", i) }

// ensureZooKeeperSecrets gives every ZooKeeper server a certificate of the
// cluster CA, the cluster its digest and super credentials, and its log
// its cluster id and data key, keeping those of an earlier start.
func ensureZooKeeperSecrets(cfg *Config, ca *certs.CA) error {
	dir := CertsDir(cfg.Dir)
	for i := 1; i <= cfg.ZooKeepers; i++ {
		if _, _, ks := certs.ZooKeeperFiles(dir, zkName(i)); !exists(ks) {
			if _, err := ca.IssueZooKeeper(dir, zkName(i), cfg.sans(i-1)); err != nil {
				return fmt.Errorf("devcluster: %w", err)
			}
		}
	}
	if err := zkcoord.NewAuthFile(filepath.Join(dir, zkcoord.AuthFile)); err != nil {
		return err
	}
	if p := filepath.Join(dir, ZooKeeperSuperFile); !exists(p) {
		if err := writePrivate(p, zkserver.NewSecret()+"\n"); err != nil {
			return fmt.Errorf("devcluster: %w", err)
		}
	}
	return seal.InitDir(dir)
}

// zkTLS is what ZooKeeper server i runs with: its keystore, the cluster
// CA, and the super user's digest; nil for an insecure cluster.
func (c Config) zkTLS(i int) (*zkserver.TLS, error) {
	if c.Insecure {
		return nil, nil
	}
	dir := CertsDir(c.Dir)
	super, err := os.ReadFile(filepath.Join(dir, ZooKeeperSuperFile))
	if err != nil {
		return nil, fmt.Errorf("devcluster: %w", err)
	}
	_, _, ks := certs.ZooKeeperFiles(dir, zkName(i))
	return &zkserver.TLS{KeyStore: ks, TrustStore: filepath.Join(dir, certs.CAFile),
		SuperDigest: zkserver.SuperDigest(strings.TrimSpace(string(super)))}, nil
}

// zkClientTLS is the admin's TLS client configuration, which the
// cluster's ZooKeeper accepts; nil for an insecure cluster (plaintext),
// or when the admin's files do not load (the probe then fails, and says
// the server does not answer).
func zkClientTLS(dir string, insecure bool) *tls.Config {
	if insecure {
		return nil
	}
	mat, err := tlsconf.Load(AdminFiles(dir))
	if err != nil {
		return nil
	}
	return mat.Client(nil)
}

// lockOldNamespace closes the bank's namespace when an earlier zkbank made
// it open to anyone (before digest ACLs): bankd refuses such a one.
func lockOldNamespace(ctx context.Context, cfg Config) error {
	if cfg.Insecure {
		return nil
	}
	zc, err := ZooKeeper(cfg, zkcoord.DefaultRoot)
	if err != nil {
		return err
	}
	zc.AllowOpen = true
	s, err := zkcoord.Connect(ctx, zc)
	if err != nil {
		return fmt.Errorf("devcluster: %w", err)
	}
	defer s.Close()
	super, err := os.ReadFile(filepath.Join(CertsDir(cfg.Dir), ZooKeeperSuperFile))
	if err != nil {
		return fmt.Errorf("devcluster: %w", err)
	}
	if err := s.Conn.AddAuth("digest", []byte("super:"+strings.TrimSpace(string(super)))); err != nil {
		return fmt.Errorf("devcluster: %w", err)
	}
	n, err := s.LockDown()
	if n > 0 {
		cfg.Logger.Info("locked the znodes an earlier zkbank left open to anyone", "znodes", n)
	}
	return err
}

// ZooKeeper is a client configuration for the cluster's ZooKeeper under
// root: TLS as the admin and bankd's digest credentials, or plaintext and
// open for an insecure cluster.
func ZooKeeper(cfg Config, root string) (zkcoord.Config, error) {
	if err := cfg.withDefaults(); err != nil {
		return zkcoord.Config{}, err
	}
	zc := zkcoord.Config{Servers: strings.Split(zkConnect(cfg), ","), Root: root, SessionTimeout: 10 * time.Second}
	if cfg.Insecure {
		zc.AllowOpen = true
		return zc, nil
	}
	auth, err := zkcoord.ParseAuth(filepath.Join(CertsDir(cfg.Dir), zkcoord.AuthFile))
	if err != nil {
		return zc, err
	}
	zc.Auth, zc.TLS = auth, zkClientTLS(cfg.Dir, false)
	return zc, nil
}
