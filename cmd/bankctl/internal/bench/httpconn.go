package bench

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// conn is one keep-alive HTTP/1.1 connection of the load generator. Like
// wrk, it writes each request by hand and reads of the answer only what the
// bench needs: the status, and the body's length to skip it. Go's net/http
// client took a quarter of this 2-core machine's CPU at 256 clients (two
// goroutines and several allocations per request), CPU the servers under
// test then lacked (docs/benchmarks.md). A conn is used by one goroutine.
type conn struct {
	addr  string
	tls   *tls.Config // nil for plain HTTP
	token string      // bearer token, if any
	nc    net.Conn
	r     *bufio.Reader
	req   []byte
}

func newConn(addr string, cfg *tls.Config, token string) *conn {
	return &conn{addr: addr, tls: cfg, token: token}
}

// do sends one request and returns the answer's status with its body
// skipped. On any error the connection is closed; the next call redials.
func (c *conn) do(method, path string, body []byte) (int, error) {
	status, err := c.exchange(method, path, body)
	if err != nil && c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
	if errors.Is(err, errAnswerClosed) {
		return status, nil
	}
	return status, err
}

// close closes the connection if it is open.
func (c *conn) close() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

// conns gives each of n workers its own connection, to the endpoints in
// turn (worker w talks to endpoints[w%len]), so that followers forward.
// They are dialed (and their TLS handshakes made) before the step starts,
// so that a step measures requests, not a storm of handshakes; clients of
// a bank keep their connections.
func (r *run) conns(n int, endpoints []string) []*conn {
	cs := make([]*conn, n)
	var wg sync.WaitGroup
	for w := range cs {
		cs[w] = newConn(endpoints[w%len(endpoints)], r.tls, r.token)
		wg.Go(func() {
			if nc, err := cs[w].dial(); err == nil { // else the first request dials
				cs[w].nc, cs[w].r = nc, bufio.NewReaderSize(nc, 64<<10)
			}
		})
	}
	wg.Wait()
	return cs
}

func closeAll(cs []*conn) {
	for _, c := range cs {
		c.close()
	}
}

func (c *conn) exchange(method, path string, body []byte) (int, error) {
	if c.nc == nil {
		nc, err := c.dial()
		if err != nil {
			return 0, err
		}
		c.nc, c.r = nc, bufio.NewReaderSize(nc, 64<<10)
	}
	if err := c.nc.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return 0, err
	}
	c.req = append(c.req[:0], method...)
	c.req = append(c.req, ' ')
	c.req = append(c.req, path...)
	c.req = append(c.req, " HTTP/1.1\r\nHost: "...)
	c.req = append(c.req, c.addr...)
	if c.token != "" {
		c.req = append(c.req, "\r\nAuthorization: Bearer "...)
		c.req = append(c.req, c.token...)
	}
	if body != nil {
		c.req = append(c.req, "\r\nContent-Type: application/json\r\nContent-Length: "...)
		c.req = strconv.AppendInt(c.req, int64(len(body)), 10)
	}
	c.req = append(c.req, "\r\n\r\n"...)
	c.req = append(c.req, body...)
	if _, err := c.nc.Write(c.req); err != nil {
		return 0, err
	}
	return c.readAnswer()
}

// readAnswer reads the status line and headers, then skips the body
// (Content-Length or chunked, the two forms Go's server uses).
func (c *conn) readAnswer() (int, error) {
	line, err := c.line()
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bench: %s: bad status line %q", c.addr, line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bench: %s: bad status line %q", c.addr, line)
	}
	length, chunked, closing := -1, false, false
	for {
		line, err := c.line()
		if err != nil {
			return 0, err
		}
		if len(line) == 0 {
			break
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return 0, fmt.Errorf("bench: %s: bad Content-Length %q", c.addr, value)
			}
		case asciiEqualFold(name, "Transfer-Encoding"):
			chunked = asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "Connection"):
			closing = asciiEqualFold(value, "close")
		}
	}
	switch {
	case status == 204 || status == 304 || status < 200: // no body by definition
	case chunked:
		err = c.skipChunks()
	case length >= 0:
		_, err = c.r.Discard(length)
	default:
		err = fmt.Errorf("bench: %s: answer without a length", c.addr)
	}
	if err == nil && closing {
		err = errAnswerClosed
	}
	return status, err
}

// errAnswerClosed: the server closed the connection after a complete
// answer; the status stands and the next request redials.
var errAnswerClosed = errors.New("bench: the server closed the connection")

func (c *conn) skipChunks() error {
	for {
		line, err := c.line()
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseUint(string(size), 16, 31)
		if err != nil {
			return fmt.Errorf("bench: %s: bad chunk size %q", c.addr, line)
		}
		if n == 0 {
			for { // trailers, up to the blank line
				if line, err := c.line(); err != nil || len(line) == 0 {
					return err
				}
			}
		}
		if _, err := c.r.Discard(int(n) + 2); err != nil {
			return err
		}
	}
}

// line reads one CRLF-terminated line without its ending. The slice is
// valid until the next read.
func (c *conn) line() ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return nil, fmt.Errorf("bench: %s: read answer: %w", c.addr, err)
	}
	return bytes.TrimRight(line, "\r\n"), nil
}

func asciiEqualFold(b []byte, s string) bool {
	return len(b) == len(s) && bytes.EqualFold(b, []byte(s))
}

// dial connects, with a TLS handshake when the cluster speaks TLS.
func (c *conn) dial() (net.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if c.tls == nil {
		return d.Dial("tcp", c.addr)
	}
	return tls.DialWithDialer(d, "tcp", c.addr, c.tls)
}
