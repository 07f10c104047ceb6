package zkcoord

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/zkbank/zkbank/zkcoord/zkdial"
	"github.com/zkbank/zkbank/zkcoord/zkserver"
)

// Defaults of Config.
const (
	DefaultRoot           = "/zkbank"
	DefaultSessionTimeout = 4 * time.Second
)

// Config configures a Session.
type Config struct {
	Servers        []string      // host:port of each ZooKeeper server
	Root           string        // namespace root; default DefaultRoot
	SessionTimeout time.Duration // default DefaultSessionTimeout
	Logger         *slog.Logger  // default discards
	// Dialer replaces net.DialTimeout; tests use it to cut a node off.
	Dialer func(network, address string, timeout time.Duration) (net.Conn, error)
	// TLS, when set, is the client side of ZooKeeper's secureClientPort:
	// each connection Dialer makes is wrapped, with ServerName the dialed
	// host unless set (go-zookeeper dials IP:port, so the servers'
	// certificates need IP SANs).
	TLS *tls.Config
	// Auth is "user:password" of ZooKeeper's digest scheme. The session
	// adds it (go-zookeeper adds it again after a reconnect), and every
	// znode it creates is that identity's alone. Empty: znodes are open to
	// anyone, which Connect refuses unless AllowOpen.
	Auth string
	// AllowOpen lets a session use a namespace whose znodes anyone may
	// read and write (bankd --insecure).
	AllowOpen bool
}

func (c *Config) withDefaults() error {
	if len(c.Servers) == 0 {
		return errors.New("zkcoord: no ZooKeeper servers configured")
	}
	if c.Root == "" {
		c.Root = DefaultRoot
	}
	if !path.IsAbs(c.Root) || path.Clean(c.Root) != c.Root || c.Root == "/" {
		return fmt.Errorf("zkcoord: root %q must be an absolute, clean path below /", c.Root)
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.SessionTimeout < time.Second {
		return fmt.Errorf("zkcoord: session timeout %v is under 1s", c.SessionTimeout)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Auth == "" && !c.AllowOpen {
		return errors.New("zkcoord: no ZooKeeper credentials: give a digest user:password, or allow an open namespace")
	}
	if user, pass, ok := strings.Cut(c.Auth, ":"); c.Auth != "" && (!ok || user == "" || pass == "") {
		return errors.New("zkcoord: ZooKeeper credentials must be user:password")
	}
	return nil
}

// AuthFile is the name of bankd's ZooKeeper credentials in its
// certificate directory.
const AuthFile = "zookeeper.auth"

// NewAuthFile writes fresh digest credentials, zkbank:<random>, to path
// (mode 0600), unless the file exists.
func NewAuthFile(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.WriteFile(path, []byte("zkbank:"+zkserver.NewSecret()+"\n"), 0o600); err != nil {
		return fmt.Errorf("zkcoord: %w", err)
	}
	return nil
}

// ParseAuth reads digest credentials, user:password on one line, from a
// file only its owner may read.
func ParseAuth(file string) (string, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return "", fmt.Errorf("zkcoord: ZooKeeper credentials: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("zkcoord: ZooKeeper credentials %s may be read by others (mode %v): chmod 600 it", file, fi.Mode().Perm())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("zkcoord: ZooKeeper credentials: %w", err)
	}
	auth := strings.TrimSpace(string(b))
	if user, pass, ok := strings.Cut(auth, ":"); !ok || user == "" || pass == "" || strings.ContainsAny(auth, "\n\r") {
		return "", fmt.Errorf("zkcoord: ZooKeeper credentials %s: want one line user:password", file)
	}
	return auth, nil
}

// ACL is what every znode the session creates carries: all permissions
// for the digest identity of Auth, or for anyone when there is none.
func (c *Config) ACL() []zk.ACL {
	user, pass, ok := strings.Cut(c.Auth, ":")
	if !ok {
		return zk.WorldACL(zk.PermAll)
	}
	return zk.DigestACL(zk.PermAll, user, pass)
}

// dialer is Dialer (or net.DialTimeout), wrapped in TLS when configured.
func (c *Config) dialer() zk.Dialer {
	if c.TLS == nil {
		if c.Dialer == nil {
			return net.DialTimeout
		}
		return c.Dialer
	}
	return zkdial.TLS(c.Dialer, c.TLS)
}

// Session is one ZooKeeper session plus the namespace paths. go-zookeeper
// reconnects by itself and, after an expiry, silently opens a new session on
// the same connection; Session turns those events into notifications its
// users can act on (step down, re-register).
type Session struct {
	Conn *zk.Conn
	cfg  Config
	acl  []zk.ACL // of every znode the session creates

	mu    sync.Mutex
	state zk.State
	subs  []chan struct{}
}

// Connect opens a session, waits until it is established (or ctx ends) and
// creates the namespace if missing.
func Connect(ctx context.Context, cfg Config) (*Session, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	s := &Session{cfg: cfg, acl: cfg.ACL()}
	conn, _, err := zk.Connect(cfg.Servers, cfg.SessionTimeout,
		zk.WithEventCallback(s.onEvent), zk.WithLogger(zkLogger{cfg.Logger}), zk.WithDialer(cfg.dialer()))
	if err != nil {
		return nil, fmt.Errorf("zkcoord: connect %v: %w", cfg.Servers, err)
	}
	s.Conn = conn
	if err := s.open(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

// open waits for the session, authenticates it, and makes sure of the
// namespace and its ACLs.
func (s *Session) open(ctx context.Context) error {
	if err := s.waitConnected(ctx); err != nil {
		return err
	}
	if user, pass, ok := strings.Cut(s.cfg.Auth, ":"); ok {
		// Digest AddAuth never fails on the server, so go-zookeeper's
		// re-sending after a reconnect cannot hang on a refusal (its PR
		// #163).
		if err := s.Conn.AddAuth("digest", []byte(user+":"+pass)); err != nil {
			return fmt.Errorf("zkcoord: authenticate to ZooKeeper as %s: %w", user, err)
		}
	}
	if err := s.ensureNamespace(); err != nil {
		return err
	}
	return s.checkACLs()
}

// checkACLs refuses a namespace that anyone may read or write, naming the
// znode, unless the configuration allows it.
func (s *Session) checkACLs() error {
	if s.cfg.AllowOpen {
		return nil
	}
	for _, p := range s.namespace() {
		acls, _, err := s.Conn.GetACL(p)
		if err != nil {
			return fmt.Errorf("zkcoord: ACL of %s: %w", p, err)
		}
		for _, a := range acls {
			if open([]zk.ACL{a}) {
				return fmt.Errorf("zkcoord: %s is open to %s:%s (%s): give it digest ACLs (docs/operations.md), or run insecure", p, a.Scheme, a.ID, perms(a.Perms))
			}
		}
	}
	return nil
}

// perms renders ZooKeeper permissions as zkCli does (cdrwa).
func perms(p int32) string {
	var b strings.Builder
	for _, x := range []struct {
		bit int32
		c   byte
	}{{zk.PermCreate, 'c'}, {zk.PermDelete, 'd'}, {zk.PermRead, 'r'}, {zk.PermWrite, 'w'}, {zk.PermAdmin, 'a'}} {
		if p&x.bit != 0 {
			b.WriteByte(x.c)
		}
	}
	return b.String()
}

// onEvent runs on go-zookeeper's goroutine and must not block.
func (s *Session) onEvent(ev zk.Event) {
	if ev.Type != zk.EventSession {
		return
	}
	s.mu.Lock()
	s.state = ev.State
	subs := s.subs
	s.mu.Unlock()
	for _, ch := range subs {
		select {
		case ch <- struct{}{}:
		default: // already signalled; the reader looks at State()
		}
	}
	s.cfg.Logger.Debug("zookeeper session event", "state", ev.State.String())
}

// Subscribe returns a channel that is signalled (coalesced) whenever the
// session state changes; read State to learn the new one.
func (s *Session) Subscribe() <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs = append(s.subs, ch)
	s.mu.Unlock()
	return ch
}

// State is the latest session state.
func (s *Session) State() zk.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Connected reports whether the session is established right now.
func (s *Session) Connected() bool { return s.State() == zk.StateHasSession }

func (s *Session) waitConnected(ctx context.Context) error {
	ch := s.Subscribe()
	defer s.unsubscribe(ch)
	timer := time.NewTimer(s.cfg.SessionTimeout * 3)
	defer timer.Stop()
	for !s.Connected() {
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("zkcoord: waiting for a session: %w", ctx.Err())
		case <-timer.C:
			return fmt.Errorf("zkcoord: no session with %v after %v", s.cfg.Servers, s.cfg.SessionTimeout*3)
		}
	}
	return nil
}

func (s *Session) unsubscribe(ch <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Copy, never edit in place: onEvent ranges over the old slice
	// without the lock.
	kept := make([]chan struct{}, 0, len(s.subs))
	for _, c := range s.subs {
		if c != ch {
			kept = append(kept, c)
		}
	}
	s.subs = kept
}

// Close ends the session; its ephemeral znodes go at once, so peers fail
// over without waiting for the timeout.
func (s *Session) Close() { s.Conn.Close() }

// Config returns the session's configuration with defaults applied.
func (s *Session) Config() Config { return s.cfg }

// Path joins parts below the root.
func (s *Session) Path(parts ...string) string {
	return path.Join(append([]string{s.cfg.Root}, parts...)...)
}

// ACL is what every znode the session creates carries.
func (s *Session) ACL() []zk.ACL { return s.acl }

// namespace is the root and the znodes directly below it.
func (s *Session) namespace() []string {
	return []string{s.cfg.Root, s.Path("election"), s.Path("members"), s.Path("registry"), s.Path("operations")}
}

func (s *Session) ensureNamespace() error {
	for _, p := range s.namespace() {
		if err := s.ensure(p); err != nil {
			return err
		}
	}
	return nil
}

// ensure creates p and its parents if they are missing.
func (s *Session) ensure(p string) error {
	if p == "/" {
		return nil
	}
	if err := s.ensure(path.Dir(p)); err != nil {
		return err
	}
	_, err := s.Conn.Create(p, nil, 0, s.acl)
	if err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return fmt.Errorf("zkcoord: create %s: %w", p, err)
	}
	return nil
}

// zkLogger routes go-zookeeper's messages to slog at debug level.
type zkLogger struct{ l *slog.Logger }

func (z zkLogger) Printf(format string, args ...any) {
	z.l.Debug(fmt.Sprintf(format, args...), "component", "go-zookeeper")
}

// LockDown gives every znode under the root that anyone may read or write
// the session's ACL, and returns how many it changed: how a namespace
// made before digest ACLs is closed (connect with AllowOpen). It walks
// the whole tree only when the root itself is open. Changing an ACL takes
// the admin permission, which world:anyone:cdrwa grants; for narrower
// ones, add ZooKeeper's super credentials to the session first.
func (s *Session) LockDown() (int, error) {
	acls, _, err := s.Conn.GetACL(s.cfg.Root)
	if err != nil {
		return 0, fmt.Errorf("zkcoord: ACL of %s: %w", s.cfg.Root, err)
	}
	if !open(acls) {
		return 0, nil
	}
	return s.lockTree(s.cfg.Root)
}

func (s *Session) lockTree(p string) (int, error) {
	changed := 0
	acls, stat, err := s.Conn.GetACL(p)
	if errors.Is(err, zk.ErrNoNode) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("zkcoord: ACL of %s: %w", p, err)
	}
	if open(acls) {
		if _, err := s.Conn.SetACL(p, s.acl, stat.Aversion); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return changed, fmt.Errorf("zkcoord: lock %s: %w", p, err)
		}
		changed++
	}
	kids, _, err := s.Conn.Children(p)
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return changed, fmt.Errorf("zkcoord: list %s: %w", p, err)
	}
	for _, k := range kids {
		n, err := s.lockTree(path.Join(p, k))
		changed += n
		if err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// open reports whether an ACL lets anyone (world) or any host (ip) in.
func open(acls []zk.ACL) bool {
	for _, a := range acls {
		if a.Scheme == "world" || a.Scheme == "ip" {
			return true
		}
	}
	return false
}
