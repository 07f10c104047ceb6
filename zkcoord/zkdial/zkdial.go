// Package zkdial dials ZooKeeper's secureClientPort for go-zookeeper,
// which has no TLS option of its own: a zk.Dialer that wraps each
// connection in TLS and completes the handshake before go-zookeeper
// speaks.
package zkdial

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/go-zookeeper/zk"
)

// TLS wraps the connections dial makes (net.DialTimeout when nil) in TLS
// with tc. ServerName, unless tc sets it, is the dialed host: go-zookeeper
// dials IP:port, so servers' certificates need IP SANs.
func TLS(dial zk.Dialer, tc *tls.Config) zk.Dialer {
	if dial == nil {
		dial = net.DialTimeout
	}
	return func(network, address string, timeout time.Duration) (net.Conn, error) {
		raw, err := dial(network, address, timeout)
		if err != nil {
			return nil, err
		}
		c := tc.Clone()
		if c.ServerName == "" {
			c.ServerName, _, _ = net.SplitHostPort(address)
		}
		conn := tls.Client(raw, c)
		conn.SetDeadline(time.Now().Add(timeout))
		if err := conn.Handshake(); err != nil {
			raw.Close()
			return nil, fmt.Errorf("zkdial: TLS with ZooKeeper %s: %w", address, err)
		}
		conn.SetDeadline(time.Time{})
		return conn, nil
	}
}
