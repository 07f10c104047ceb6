package netlab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Link is what a slow host's connections go through, each way.
type Link struct {
	Delay  time.Duration // added to every chunk of data
	Jitter time.Duration // plus a random part, uniform in [0, Jitter)
	// Loss is the fraction of chunks that arrive a retransmission timeout
	// (RTO, default 200 ms) late: what TCP makes of a lost segment, seen
	// from the application. A stream proxy cannot lose bytes of a TCP
	// connection without breaking it, so loss is modelled as its delay.
	Loss           float64
	RTO            time.Duration
	BytesPerSecond int64 // 0: no limit
}

// proxyMark marks the proxy's own connections, so that the redirect to
// the proxy does not take them again.
const proxyMark = 0x7a6b

// Slow is a set of links whose TCP connections run through delaying
// proxies: one proxy in each host that opens such connections.
type Slow struct {
	proxies []*proxy
}

// proxy is one host's: nftables redirects the connections it opens to
// the slowed addresses to it, and it dials each one's original
// destination, from the same host, so the other end sees the true source
// address (TLS peers that check it, as ZooKeeper's quorum does, still
// accept it).
type proxy struct {
	h      *Host
	table  string
	link   Link
	ln     net.Listener
	mu     sync.Mutex
	live   map[net.Conn]struct{}
	done   chan struct{}
	wg     sync.WaitGroup
	served atomic.Int64 // connections taken
}

// SlowDown delays every TCP connection between h and the other hosts (the
// client host's too) by link, both ways, whichever end opens it. Only
// connections opened after are slowed; Close undoes it.
func (l *Lab) SlowDown(h *Host, link Link) (*Slow, error) {
	dests := map[*Host]string{h: "ip daddr " + Subnet + ".0/24 ip daddr != " + h.Addr}
	for _, o := range others(l.hosts, h) {
		dests[o] = "ip daddr " + h.Addr
	}
	return l.slow(link, dests)
}

// SlowAll delays every TCP connection between any two hosts by link,
// both ways.
func (l *Lab) SlowAll(link Link) (*Slow, error) {
	dests := map[*Host]string{}
	for _, h := range l.hosts {
		dests[h] = "ip daddr " + Subnet + ".0/24 ip daddr != " + h.Addr
	}
	return l.slow(link, dests)
}

// slow starts a proxy in each host of dests, for the connections it opens
// to the addresses its nft match names.
func (l *Lab) slow(link Link, dests map[*Host]string) (*Slow, error) {
	if link.RTO == 0 {
		link.RTO = 200 * time.Millisecond
	}
	s := &Slow{}
	for _, h := range l.hosts {
		match, ok := dests[h]
		if !ok {
			continue
		}
		p, err := startProxy(h, l.tag()+"_slow", match, link)
		if err != nil {
			return nil, errors.Join(err, s.Close())
		}
		s.proxies = append(s.proxies, p)
	}
	return s, nil
}

func startProxy(h *Host, table, match string, link Link) (*proxy, error) {
	ln, err := h.Listen("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	table = fmt.Sprintf("%s_%d", table, port) // its own: Close deletes no other's
	p := &proxy{h: h, table: table, link: link, ln: ln, live: map[net.Conn]struct{}{}, done: make(chan struct{})}
	script := fmt.Sprintf(`add table ip %[1]s
add chain ip %[1]s out { type nat hook output priority -100; policy accept; }
add rule ip %[1]s out meta mark != %[2]d %[3]s meta l4proto tcp redirect to :%[4]d
`, table, proxyMark, match, port)
	if err := h.nft(script); err != nil {
		ln.Close()
		return nil, err
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Close removes every redirect, then closes the proxies and the
// connections through them (their ends see them break, and reconnect
// direct).
func (s *Slow) Close() error {
	var errs []error
	for _, p := range s.proxies {
		errs = append(errs, p.close())
	}
	return errors.Join(errs...)
}

func (p *proxy) close() error {
	err := p.h.nft(fmt.Sprintf("delete table ip %s\n", p.table))
	close(p.done)
	p.ln.Close()
	p.mu.Lock()
	for c := range p.live {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		c.Close()
		return false
	default:
	}
	p.live[c] = struct{}{}
	return true
}

func (p *proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.live, c)
	p.mu.Unlock()
	c.Close()
}

func (p *proxy) serve(in net.Conn) {
	defer p.wg.Done()
	p.served.Add(1)
	if !p.track(in) {
		return
	}
	defer p.untrack(in)
	dst, err := originalDst(in)
	if err != nil {
		return
	}
	d := &net.Dialer{Timeout: 10 * time.Second, Control: markSocket}
	out, err := p.h.dial(context.Background(), d, "tcp", dst)
	if err != nil {
		return
	}
	if !p.track(out) {
		return
	}
	defer p.untrack(out)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(out, in) }()
	go func() { defer wg.Done(); p.pipe(in, out) }()
	wg.Wait()
}

// pipe copies src to dst through the link's delay line: each chunk is
// due at max(the one before, now + delay + jitter [+ RTO when "lost"] +
// its size at the rate), so order is kept and the rate holds.
func (p *proxy) pipe(dst, src net.Conn) {
	type chunk struct {
		b   []byte
		due time.Time
	}
	line := make(chan chunk, 256) // about 8 MB in flight at most: back-pressure beyond
	go func() {
		defer func() {
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
		}()
		for c := range line {
			time.Sleep(time.Until(c.due))
			if _, err := dst.Write(c.b); err != nil {
				src.Close()
				for range line { // let the reader finish
				}
				return
			}
		}
	}()
	defer close(line)
	var last time.Time
	for {
		buf := make([]byte, 32<<10)
		n, err := src.Read(buf)
		if n > 0 {
			due := time.Now().Add(p.link.Delay)
			if p.link.Jitter > 0 {
				due = due.Add(rand.N(p.link.Jitter))
			}
			if p.link.Loss > 0 && rand.Float64() < p.link.Loss {
				due = due.Add(p.link.RTO)
			}
			if due.Before(last) {
				due = last
			}
			if p.link.BytesPerSecond > 0 {
				due = due.Add(time.Duration(int64(n) * int64(time.Second) / p.link.BytesPerSecond))
			}
			last = due
			line <- chunk{buf[:n], due}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				dst.Close()
			}
			return
		}
	}
}

// originalDst is where a redirected connection was headed.
func originalDst(c net.Conn) (string, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return "", errors.New("netlab: not TCP")
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return "", err
	}
	var addr string
	var oerr error
	err = raw.Control(func(fd uintptr) {
		// SO_ORIGINAL_DST answers a sockaddr_in; x/sys has no getter of
		// that shape, and IPv6Mreq is one of 20 bytes that holds it.
		m, e := unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, unix.SO_ORIGINAL_DST)
		if e != nil {
			oerr = e
			return
		}
		b := m.Multiaddr
		addr = net.JoinHostPort(net.IP(b[4:8]).String(), fmt.Sprint(binary.BigEndian.Uint16(b[2:4])))
	})
	if err == nil {
		err = oerr
	}
	if err != nil {
		return "", fmt.Errorf("netlab: original destination: %w", err)
	}
	return addr, nil
}

func markSocket(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, proxyMark)
	})
	if err != nil {
		return err
	}
	return serr
}
