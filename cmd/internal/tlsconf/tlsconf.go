// Package tlsconf builds the TLS configurations of bankd (its server and
// its calls to peers) and bankctl from certificate files (package certs),
// and swaps them when the files change (bankd on SIGHUP) without touching
// the connections and requests in flight: every handshake reads the
// material current at that moment.
//
// TLS 1.3 only. A server asks for a client certificate and verifies it
// against the CA bundle when one is given (what it proves is the caller's
// to judge); a client verifies the server's chain against the bundle, its
// name (the host it dialed), and whatever check it is given, and resumes
// sessions so that reconnects skip the full handshake.
package tlsconf

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/zkbank/zkbank/certs"
)

// Files name a node's or a client's TLS material. Cert and Key may be
// empty for a client that only verifies servers.
type Files struct {
	Cert, Key, CA string
}

// Material is TLS material that can be reloaded.
type Material struct {
	files Files
	check func(*x509.Certificate) error // of its own certificate, at every load
	cur   atomic.Pointer[loaded]

	full, resumed atomic.Uint64 // the server's handshakes
}

// Handshakes counts the handshakes the server completed: full ones (a
// signature and a key exchange each) and resumed ones.
func (m *Material) Handshakes() (full, resumed uint64) { return m.full.Load(), m.resumed.Load() }

func (m *Material) countHandshake(cs tls.ConnectionState) error {
	if cs.DidResume {
		m.resumed.Add(1)
	} else {
		m.full.Add(1)
	}
	return nil
}

// loaded is one reading of the files, with the server configuration made
// from it once. Each reading has its own session ticket key and client
// session cache: a session resumed across a reload would carry the
// certificates of before it (a resumed TLS 1.3 handshake sends none), so
// a reload ends resumption and the next handshake of each connection is
// a full one, verified against the new bundle.
type loaded struct {
	cert     *tls.Certificate // nil for a client without one
	leaf     *x509.Certificate
	pool     *x509.CertPool
	server   *tls.Config
	sessions tls.ClientSessionCache
}

// Load reads the files.
func Load(f Files) (*Material, error) {
	m := &Material{files: f}
	return m, m.Reload()
}

// LoadNode reads a node's files: its certificate must be a node
// certificate for id, at this load and at every reload.
func LoadNode(f Files, id string) (*Material, error) {
	m := &Material{files: f, check: func(leaf *x509.Certificate) error {
		if got, ok := certs.NodeID(leaf); !ok || got != id {
			return fmt.Errorf("tlsconf: %s is not a node certificate for %q (it names %q): make one with bankctl certs node --id %s", f.Cert, id, got, id)
		}
		return nil
	}}
	return m, m.Reload()
}

// Reload reads the files again; on any error the material in use stays.
func (m *Material) Reload() error {
	l := &loaded{}
	var err error
	if l.pool, err = certs.ReadPool(m.files.CA); err != nil {
		return fmt.Errorf("tlsconf: CA bundle: %w", err)
	}
	if m.files.Cert != "" || m.files.Key != "" {
		c, err := tls.LoadX509KeyPair(m.files.Cert, m.files.Key)
		if err != nil {
			return fmt.Errorf("tlsconf: %s and %s: %w", m.files.Cert, m.files.Key, err)
		}
		l.cert, l.leaf = &c, c.Leaf
		if _, err := l.leaf.Verify(x509.VerifyOptions{Roots: l.pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return fmt.Errorf("tlsconf: %s is not signed by a CA of %s: %w", m.files.Cert, m.files.CA, err)
		}
	}
	if m.check != nil {
		if err := m.check(l.leaf); err != nil {
			return err
		}
	}
	l.server = &tls.Config{MinVersion: tls.VersionTLS13, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: l.pool, VerifyConnection: m.countHandshake}
	if l.cert != nil {
		l.server.Certificates = []tls.Certificate{*l.cert}
	}
	var ticketKey [32]byte
	if _, err := rand.Read(ticketKey[:]); err != nil {
		return fmt.Errorf("tlsconf: session ticket key: %w", err)
	}
	l.server.SetSessionTicketKeys([][32]byte{ticketKey})
	l.sessions = tls.NewLRUClientSessionCache(256)
	m.cur.Store(l)
	return nil
}

// currentSessions is the client session cache of the material current at
// each handshake.
type currentSessions struct{ m *Material }

func (c currentSessions) Get(key string) (*tls.ClientSessionState, bool) {
	return c.m.cur.Load().sessions.Get(key)
}

func (c currentSessions) Put(key string, cs *tls.ClientSessionState) {
	c.m.cur.Load().sessions.Put(key, cs)
}

// Identity is the material's own key and certificate (DER), as they are
// now: what a node signs the log with (nil without a certificate).
func (m *Material) Identity() (crypto.Signer, []byte) {
	l := m.cur.Load()
	if l.cert == nil {
		return nil, nil
	}
	key, _ := l.cert.PrivateKey.(crypto.Signer)
	return key, l.leaf.Raw
}

// Leaf is the material's own certificate (nil without one).
func (m *Material) Leaf() *x509.Certificate { return m.cur.Load().leaf }

// Server is the configuration of a TLS server with the current material.
func (m *Material) Server() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return m.cur.Load().server, nil },
	}
}

// Client is the configuration of a TLS client with the current material:
// it presents its certificate, if any, and accepts a server whose chain
// leads to the bundle, that is valid for the host it dialed, and that
// check (if not nil) accepts.
func (m *Material) Client(check func(*x509.Certificate) error) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// The chain is verified below against the bundle current at each
		// handshake; a fixed RootCAs could not follow a reload.
		InsecureSkipVerify: true,
		VerifyConnection:   func(cs tls.ConnectionState) error { return m.verifyServer(cs, check) },
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if c := m.cur.Load().cert; c != nil {
				return c, nil
			}
			return &tls.Certificate{}, nil
		},
		ClientSessionCache: currentSessions{m},
	}
}

func (m *Material) verifyServer(cs tls.ConnectionState, check func(*x509.Certificate) error) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tlsconf: the server sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: m.cur.Load().pool, Intermediates: inter, DNSName: cs.ServerName, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("tlsconf: the server's certificate: %w", err)
	}
	if check != nil {
		return check(leaf)
	}
	return nil
}

// Caller is the verified certificate a TLS connection's client presented
// (nil when it presented none).
func Caller(cs *tls.ConnectionState) *x509.Certificate {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return nil
	}
	return cs.VerifiedChains[0][0]
}

// NodeOnly is a client check that accepts only a node certificate.
func NodeOnly(leaf *x509.Certificate) error {
	if _, ok := certs.NodeID(leaf); !ok {
		return fmt.Errorf("tlsconf: %q is not a node certificate", leaf.Subject.CommonName)
	}
	return nil
}
