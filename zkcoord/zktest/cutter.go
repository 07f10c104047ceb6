package zktest

import (
	"errors"
	"net"
	"sync"
	"time"
)

// Cutter is a dialer whose connections can be cut off and restored, to
// partition one client from ZooKeeper without touching the servers: while
// cut, new dials fail, bytes written are dropped and bytes read are
// discarded, so the server stops hearing from the client and expires its
// session after the timeout.
type Cutter struct {
	mu  sync.Mutex
	cut bool
}

// Cut partitions the client.
func (c *Cutter) Cut() { c.set(true) }

// Resume heals the partition.
func (c *Cutter) Resume() { c.set(false) }

func (c *Cutter) set(v bool) {
	c.mu.Lock()
	c.cut = v
	c.mu.Unlock()
}

func (c *Cutter) isCut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cut
}

// Dial has the signature of zkcoord.Config.Dialer.
func (c *Cutter) Dial(network, address string, timeout time.Duration) (net.Conn, error) {
	if c.isCut() {
		return nil, errors.New("zktest: connection cut")
	}
	conn, err := net.DialTimeout(network, address, timeout)
	if err != nil {
		return nil, err
	}
	return &cutConn{Conn: conn, c: c}, nil
}

type cutConn struct {
	net.Conn
	c *Cutter
}

func (cc *cutConn) Write(b []byte) (int, error) {
	if cc.c.isCut() {
		return len(b), nil
	}
	return cc.Conn.Write(b)
}

func (cc *cutConn) Read(b []byte) (int, error) {
	for {
		n, err := cc.Conn.Read(b)
		if err != nil || !cc.c.isCut() {
			return n, err
		}
	}
}
