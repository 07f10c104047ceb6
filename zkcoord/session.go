package zkcoord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
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
	return nil
}

// Session is one ZooKeeper session plus the namespace paths. go-zookeeper
// reconnects by itself and, after an expiry, silently opens a new session on
// the same connection; Session turns those events into notifications its
// users can act on (step down, re-register).
type Session struct {
	Conn *zk.Conn
	cfg  Config

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
	s := &Session{cfg: cfg}
	dialer := cfg.Dialer
	if dialer == nil {
		dialer = net.DialTimeout
	}
	conn, _, err := zk.Connect(cfg.Servers, cfg.SessionTimeout,
		zk.WithEventCallback(s.onEvent), zk.WithLogger(zkLogger{cfg.Logger}), zk.WithDialer(dialer))
	if err != nil {
		return nil, fmt.Errorf("zkcoord: connect %v: %w", cfg.Servers, err)
	}
	s.Conn = conn
	if err := s.waitConnected(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	if err := s.ensureNamespace(); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
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

func (s *Session) ensureNamespace() error {
	for _, p := range []string{s.cfg.Root, s.Path("election"), s.Path("members"), s.Path("registry"), s.Path("operations")} {
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
	_, err := s.Conn.Create(p, nil, 0, zk.WorldACL(zk.PermAll))
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
