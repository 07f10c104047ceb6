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

// Slow is a host whose TCP traffic with the other hosts runs through a
// proxy that delays it by a Link.
type Slow struct {
	h    *Host
	link Link
	ln   net.Listener
	mu   sync.Mutex
	live map[net.Conn]struct{}
	done chan struct{}
	wg   sync.WaitGroup
}

// SlowDown sends every TCP connection that h opens to another lab host,
// or accepts from one, through a proxy in h that applies link both ways:
// nftables redirects them to it (in h's nat table), and the proxy reads
// each connection's original destination (SO_ORIGINAL_DST) and dials it.
// Connections open before stay direct. Close undoes it.
func (l *Lab) SlowDown(h *Host, link Link) (*Slow, error) {
	if link.RTO == 0 {
		link.RTO = 200 * time.Millisecond
	}
	ln, err := h.Listen("0.0.0.0:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	s := &Slow{h: h, link: link, ln: ln, live: map[net.Conn]struct{}{}, done: make(chan struct{})}
	nat := l.tag() + "_slow"
	script := fmt.Sprintf(`add table ip %[1]s
add chain ip %[1]s pre { type nat hook prerouting priority dstnat; policy accept; }
add chain ip %[1]s out { type nat hook output priority -100; policy accept; }
add rule ip %[1]s pre ip saddr %[2]s.0/24 ip daddr %[3]s tcp dport != %[4]d redirect to :%[4]d
add rule ip %[1]s out meta mark != %[5]d ip daddr %[2]s.0/24 ip daddr != %[3]s meta l4proto tcp redirect to :%[4]d
`, nat, Subnet, h.Addr, port, proxyMark)
	if err := h.nft(script); err != nil {
		ln.Close()
		return nil, err
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Close removes the redirect, then closes the proxy and every connection
// through it (their ends see a reset and reconnect, direct).
func (s *Slow) Close() error {
	err := s.h.nft(fmt.Sprintf("delete table ip %s_slow\n", s.h.lab.tag()))
	close(s.done)
	s.ln.Close()
	s.mu.Lock()
	for c := range s.live {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Slow) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed
		}
		s.wg.Add(1)
		go s.serve(c)
	}
}

func (s *Slow) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		c.Close()
		return false
	default:
	}
	s.live[c] = struct{}{}
	return true
}

func (s *Slow) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.live, c)
	s.mu.Unlock()
	c.Close()
}

func (s *Slow) serve(in net.Conn) {
	defer s.wg.Done()
	if !s.track(in) {
		return
	}
	defer s.untrack(in)
	dst, err := originalDst(in)
	if err != nil {
		return
	}
	d := &net.Dialer{Timeout: 10 * time.Second, Control: markSocket}
	out, err := s.h.dial(context.Background(), d, "tcp", dst)
	if err != nil {
		return
	}
	if !s.track(out) {
		return
	}
	defer s.untrack(out)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.pipe(out, in) }()
	go func() { defer wg.Done(); s.pipe(in, out) }()
	wg.Wait()
}

// pipe copies src to dst through the link's delay line: each chunk is
// due at max(the one before, now + delay + jitter [+ RTO when "lost"] +
// its size at the rate), so order is kept and the rate holds.
func (s *Slow) pipe(dst, src net.Conn) {
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
			due := time.Now().Add(s.link.Delay)
			if s.link.Jitter > 0 {
				due = due.Add(rand.N(s.link.Jitter))
			}
			if s.link.Loss > 0 && rand.Float64() < s.link.Loss {
				due = due.Add(s.link.RTO)
			}
			if due.Before(last) {
				due = last
			}
			if s.link.BytesPerSecond > 0 {
				due = due.Add(time.Duration(int64(n) * int64(time.Second) / s.link.BytesPerSecond))
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
