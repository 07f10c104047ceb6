// Package certs makes and reads the cluster's certificates, with Go's
// crypto/x509 alone (no openssl): one cluster CA, node certificates and
// client certificates, in one directory with fixed names:
//
//	ca.crt               the CA bundle nodes and clients trust (PEM; one
//	                     certificate, or two during a CA rollover)
//	ca.key               the current CA's private key (keep it offline)
//	node-<id>.crt, .key  a node's certificate and key
//	client-<name>.crt, .key  a client's certificate and key
//	zookeeper-<name>.crt, .key, .pem  a ZooKeeper server's certificate,
//	                     key, and both in the PEM keystore it reads
//
// A node certificate says it is a node: a URI SAN zkbank://node/<id>,
// extended key usage for both server and client auth, and the node's
// hosts and IPs as SANs. A client certificate carries its principal (the
// subject's common name, and a URI SAN zkbank://client/<name>) and its
// role (the subject's organizational unit); its only usage is client
// auth. Only a node certificate is a node identity, whatever else a
// certificate holds (NodeID). Keys are ECDSA P-256, which both Go and
// ZooKeeper's Java TLS speak; serial numbers are random 63-bit numbers,
// short enough for a command to name one.
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Roles a client certificate may carry.
var Roles = []string{"admin", "teller", "auditor", "customer"}

// Validity of what New* make.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	CertValidity = 2 * 365 * 24 * time.Hour
)

// File names in a certificate directory.
const (
	CAFile    = "ca.crt"
	CAKeyFile = "ca.key"
)

// NodeFiles are a node's certificate and key files.
func NodeFiles(dir, id string) (crt, key string) {
	return filepath.Join(dir, "node-"+id+".crt"), filepath.Join(dir, "node-"+id+".key")
}

// ClientFiles are a client's certificate and key files.
func ClientFiles(dir, name string) (crt, key string) {
	return filepath.Join(dir, "client-"+name+".crt"), filepath.Join(dir, "client-"+name+".key")
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidName reports whether s may name a node or a client: 1..64 of
// letters, digits, _, . and -, starting with a letter or digit.
func ValidName(s string) bool { return namePattern.MatchString(s) }

// CA is a certificate authority that can sign.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA makes a CA, writes ca.crt and ca.key into dir (refusing to
// overwrite them) and returns it.
func NewCA(dir, name string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	for _, f := range []string{CAFile, CAKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return nil, fmt.Errorf("certs: %s exists; a new CA needs a new directory, or a rollover", filepath.Join(dir, f))
		}
	}
	ca, err := makeCA(name)
	if err != nil {
		return nil, err
	}
	if err := writePEM(filepath.Join(dir, CAFile), "CERTIFICATE", ca.Cert.Raw, 0o644); err != nil {
		return nil, err
	}
	return ca, writeKey(filepath.Join(dir, CAKeyFile), ca.Key)
}

// Rollover makes a new CA in dir: its key replaces ca.key (the old one is
// kept as ca.key.old) and ca.crt becomes the bundle of the new and the old
// certificate, so that nodes trust both while certificates are reissued.
// DropOld later leaves only the new one in the bundle.
func Rollover(dir, name string) (*CA, error) {
	old, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, fmt.Errorf("certs: rollover needs the current %s: %w", CAFile, err)
	}
	ca, err := makeCA(name)
	if err != nil {
		return nil, err
	}
	if err := os.Rename(filepath.Join(dir, CAKeyFile), filepath.Join(dir, CAKeyFile+".old")); err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	if err := writeKey(filepath.Join(dir, CAKeyFile), ca.Key); err != nil {
		return nil, err
	}
	bundle := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), old...)
	return ca, writeFile(filepath.Join(dir, CAFile), bundle, 0o644)
}

// DropOld ends a rollover: the bundle keeps only the newest CA, the one
// whose key is ca.key.
func DropOld(dir string) error {
	ca, err := LoadCA(dir)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, CAFile), "CERTIFICATE", ca.Cert.Raw, 0o644); err != nil {
		return err
	}
	return os.Remove(filepath.Join(dir, CAKeyFile+".old"))
}

func makeCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	serial, err := NewSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name, Organization: []string{"zkbank"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(CAValidity),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("certs: make the CA: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &CA{Cert: cert, Key: key}, nil
}

// LoadCA reads the signing CA (ca.key, and its certificate from the bundle).
func LoadCA(dir string) (*CA, error) {
	pool, err := ReadCerts(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, err
	}
	key, err := readKey(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, err
	}
	for _, c := range pool {
		if pub, ok := c.PublicKey.(*ecdsa.PublicKey); ok && pub.Equal(key.Public()) {
			return &CA{Cert: c, Key: key}, nil
		}
	}
	return nil, fmt.Errorf("certs: no certificate in %s matches %s", filepath.Join(dir, CAFile), CAKeyFile)
}

// NewSerial is a random positive serial of 63 bits.
func NewSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// NodeURI is the SAN that makes a certificate a node's.
func NodeURI(id string) *url.URL { return &url.URL{Scheme: "zkbank", Host: "node", Path: "/" + id} }

// ClientURI is the SAN that names a client's principal.
func ClientURI(name string) *url.URL {
	return &url.URL{Scheme: "zkbank", Host: "client", Path: "/" + name}
}

// IssueNode signs a node certificate for id, valid for hosts (names or
// IPs), and writes it and its key into dir.
func (ca *CA) IssueNode(dir, id string, hosts []string) (*x509.Certificate, error) {
	if !ValidName(id) {
		return nil, fmt.Errorf("certs: node id %q: use 1 to 64 letters, digits, _, . and -", id)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: id, Organization: []string{"zkbank"}, OrganizationalUnit: []string{"node"}},
		URIs:        []*url.URL{NodeURI(id)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	addHosts(tmpl, hosts)
	crt, key := NodeFiles(dir, id)
	return ca.issue(tmpl, crt, key)
}

// ZooKeeperURI is the SAN that makes a certificate a ZooKeeper server's.
func ZooKeeperURI(name string) *url.URL {
	return &url.URL{Scheme: "zkbank", Host: "zookeeper", Path: "/" + name}
}

// ZooKeeperFiles are a ZooKeeper server's certificate and key files, and
// the PEM keystore ZooKeeper reads (the key, then the certificate).
func ZooKeeperFiles(dir, name string) (crt, key, keystore string) {
	base := filepath.Join(dir, "zookeeper-"+name)
	return base + ".crt", base + ".key", base + ".pem"
}

// IssueZooKeeper signs a certificate for the ZooKeeper server name, valid
// for hosts (go-zookeeper dials IP:port, so list the IPs), with server and
// client auth (servers of an ensemble dial each other over sslQuorum). It
// is not a node certificate: it cannot join the bank or sign its log.
// Besides the certificate and key it writes the keystore file ZooKeeper's
// ssl.keyStore.type=PEM reads.
func (ca *CA) IssueZooKeeper(dir, name string, hosts []string) (*x509.Certificate, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("certs: ZooKeeper server name %q: use 1 to 64 letters, digits, _, . and -", name)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: name, Organization: []string{"zkbank"}, OrganizationalUnit: []string{"zookeeper"}},
		URIs:        []*url.URL{ZooKeeperURI(name)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	addHosts(tmpl, hosts)
	crt, key, keystore := ZooKeeperFiles(dir, name)
	cert, err := ca.issue(tmpl, crt, key)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(key)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	return cert, writeFile(keystore, append(keyPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})...), 0o600)
}

// addHosts puts hosts (names or IPs) into tmpl's SANs.
func addHosts(tmpl *x509.Certificate, hosts []string) {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
}

// IssueClient signs a client certificate for the principal name with
// role, and writes it and its key into dir.
func (ca *CA) IssueClient(dir, name, role string) (*x509.Certificate, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("certs: client name %q: use 1 to 64 letters, digits, _, . and -", name)
	}
	if !validRole(role) {
		return nil, fmt.Errorf("certs: role %q: use one of %s", role, strings.Join(Roles, ", "))
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: name, Organization: []string{"zkbank"}, OrganizationalUnit: []string{role}},
		URIs:        []*url.URL{ClientURI(name)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	crt, key := ClientFiles(dir, name)
	return ca.issue(tmpl, crt, key)
}

func validRole(role string) bool {
	for _, r := range Roles {
		if r == role {
			return true
		}
	}
	return false
}

func (ca *CA) issue(tmpl *x509.Certificate, crtPath, keyPath string) (*x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	if tmpl.SerialNumber, err = NewSerial(); err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(CertValidity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("certs: sign %s: %w", tmpl.Subject.CommonName, err)
	}
	cert, _ := x509.ParseCertificate(der)
	if err := writePEM(crtPath, "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	return cert, writeKey(keyPath, key)
}

// NodeID is the node id a certificate proves, when it is a node
// certificate: the zkbank://node/<id> SAN and the server and client auth
// usages. Anything else (a client certificate, whatever its names) is not
// a node.
func NodeID(c *x509.Certificate) (string, bool) {
	if !hasUsage(c, x509.ExtKeyUsageServerAuth) || !hasUsage(c, x509.ExtKeyUsageClientAuth) {
		return "", false
	}
	for _, u := range c.URIs {
		if u.Scheme == "zkbank" && u.Host == "node" && ValidName(strings.TrimPrefix(u.Path, "/")) {
			return strings.TrimPrefix(u.Path, "/"), true
		}
	}
	return "", false
}

// Client is the principal and role a client certificate carries.
func Client(c *x509.Certificate) (name, role string, ok bool) {
	if _, node := NodeID(c); node || len(c.Subject.OrganizationalUnit) != 1 {
		return "", "", false
	}
	for _, u := range c.URIs {
		if u.Scheme == "zkbank" && u.Host == "client" && strings.TrimPrefix(u.Path, "/") == c.Subject.CommonName {
			role = c.Subject.OrganizationalUnit[0]
			return c.Subject.CommonName, role, validRole(role) && ValidName(c.Subject.CommonName)
		}
	}
	return "", "", false
}

func hasUsage(c *x509.Certificate, u x509.ExtKeyUsage) bool {
	for _, x := range c.ExtKeyUsage {
		if x == u {
			return true
		}
	}
	return false
}

// Describe says what a certificate is: "ca", "node <id>", "client <name>
// (<role>)", or "other".
func Describe(c *x509.Certificate) string {
	if id, ok := NodeID(c); ok {
		return "node " + id
	}
	if name, role, ok := Client(c); ok {
		return "client " + name + " (" + role + ")"
	}
	for _, u := range c.URIs {
		if u.Scheme == "zkbank" && u.Host == "zookeeper" {
			return "zookeeper " + strings.TrimPrefix(u.Path, "/")
		}
	}
	if c.IsCA {
		return "ca"
	}
	return "other"
}

// Serial renders a certificate's serial as the log and the API name it.
func Serial(c *x509.Certificate) string { return c.SerialNumber.Text(16) }

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

// writeFile writes atomically (a temporary file renamed into place), so
// that a node reloading its files never reads half of one.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}

// ReadCerts reads every certificate of a PEM file.
func ReadCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certs: %s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("certs: %s holds no certificate", path)
	}
	return out, nil
}

func readKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("certs: %s holds no PEM key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("certs: not a signing key")
	}
	return s, nil
}

// ReadPool reads a CA bundle into a pool.
func ReadPool(path string) (*x509.CertPool, error) {
	list, err := ReadCerts(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range list {
		pool.AddCert(c)
	}
	return pool, nil
}
