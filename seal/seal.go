package seal

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/zkbank/zkbank/certs"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/engine/entry"
)

// ErrUnverified marks an entry that is not what a leader of this cluster
// wrote: a bad or missing signature, a signer that may not sign, a body
// that does not open. A node never journals or applies one.
var ErrUnverified = errors.New("seal: entry does not verify")

// nonceBytes is the size of an AES-GCM nonce, random per entry and kept in
// front of the ciphertext.
const nonceBytes = 12

// Trust is what verifying and opening take from outside the log: the CA
// bundle node certificates must chain to, the cluster's id, and the data
// keys.
type Trust struct {
	Roots   *x509.CertPool
	Cluster []byte
	Keys    *Keyring
}

// lastSigner is the signer certificate NewCursor parsed last: a node
// makes a cursor for every batch it applies, and the signer changes once
// an epoch. A cache of bytes and what they parse to, so sharing it is
// safe.
var lastSigner atomic.Pointer[parsedCert]

// parsedCert is a certificate and the bytes it was parsed from.
type parsedCert struct {
	der  []byte
	cert *x509.Certificate
}

// parseSigner parses a signer's certificate, once while it stays the
// same.
func parseSigner(der []byte) (*x509.Certificate, error) {
	if p := lastSigner.Load(); p != nil && bytes.Equal(p.der, der) {
		return p.cert, nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	lastSigner.Store(&parsedCert{der: bytes.Clone(der), cert: cert})
	return cert, nil
}

// Term seals the entries one leader writes in one epoch: with the key and
// certificate it had when the term began (one signer per epoch), the
// certificate and the cluster id in the first sealed entry only.
type Term struct {
	trust  *Trust
	key    crypto.Signer
	cert   []byte
	keyID  func() uint32
	sealed bool // the term entry was sealed
}

// NewTerm starts sealing a term with the node's key and certificate (DER),
// and the data key keyID names at each entry (nil: the newest held).
func (t *Trust) NewTerm(key crypto.Signer, cert []byte, keyID func() uint32) *Term {
	if keyID == nil {
		keyID = t.Keys.Current
	}
	return &Term{trust: t, key: key, cert: cert, keyID: keyID}
}

// Seal encrypts e's body with the current data key and signs e; an
// envelope of a body version before BodySealed is left as it is. Call it
// before entry.Encode, in index order.
func (t *Term) Seal(e *entry.Envelope) error {
	if e.BodyVersion < entry.BodySealed {
		return nil
	}
	e.KeyID = t.keyID()
	if !t.sealed {
		e.Cert, e.Cluster = t.cert, t.trust.Cluster
	}
	body, err := t.trust.encrypt(e, e.Body)
	if err != nil {
		return fmt.Errorf("seal: entry %d: %w", e.Index, err)
	}
	e.Body = body
	h := e.SigningHash(t.trust.Cluster)
	if e.Sig, err = t.key.Sign(rand.Reader, h[:], crypto.SHA256); err != nil {
		return fmt.Errorf("seal: sign entry %d: %w", e.Index, err)
	}
	t.sealed = true
	return nil
}

func (t *Trust) aead(id uint32) (cipher.AEAD, error) {
	if t.Keys == nil {
		return nil, errors.New("no data keys given")
	}
	key, ok := t.Keys.key(id)
	if !ok {
		return nil, fmt.Errorf("no data key %d here (keys held: %v)", id, t.Keys.IDs())
	}
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// aad binds a ciphertext to its place: it opens only in the entry of that
// index, epoch, body version and key.
func aad(e *entry.Envelope) []byte {
	b := make([]byte, 0, 24)
	b = binary.BigEndian.AppendUint64(b, e.Index)
	b = binary.BigEndian.AppendUint64(b, e.Epoch)
	b = binary.BigEndian.AppendUint32(b, e.BodyVersion)
	return binary.BigEndian.AppendUint32(b, e.KeyID)
}

func (t *Trust) encrypt(e *entry.Envelope, plain []byte) ([]byte, error) {
	g, err := t.aead(e.KeyID)
	if err != nil {
		return nil, err
	}
	out := make([]byte, nonceBytes, nonceBytes+len(plain)+g.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, err
	}
	return g.Seal(out, out[:nonceBytes], plain, aad(e)), nil
}

// Decrypt opens a sealed envelope's body into the entry it carries,
// without verifying the signature: for entries verified before (a
// journal's). An envelope of an earlier body version is decoded as it is.
func (t *Trust) Decrypt(env *entry.Envelope) (*engine.Entry, error) {
	if env.BodyVersion < entry.BodySealed {
		return engine.Open(env)
	}
	g, err := t.aead(env.KeyID)
	if err != nil {
		return nil, fmt.Errorf("%w: entry %d: %w", ErrUnverified, env.Index, err)
	}
	if len(env.Body) < nonceBytes+g.Overhead() {
		return nil, fmt.Errorf("%w: entry %d: a sealed body of %d bytes", ErrUnverified, env.Index, len(env.Body))
	}
	plain, err := g.Open(nil, env.Body[:nonceBytes], env.Body[nonceBytes:], aad(env))
	if err != nil {
		return nil, fmt.Errorf("%w: entry %d: the body does not open with key %d", ErrUnverified, env.Index, env.KeyID)
	}
	opened := *env // keeps raw and hash: the entry is still the log's bytes
	opened.Body = plain
	e, err := engine.Open(&opened)
	if err != nil {
		return nil, err
	}
	e.Body = env.Body
	return e, nil
}

// DecodeRaw decodes and opens an entry's bytes (Decrypt): the decoder of
// a journal whose entries were verified when they were written.
func (t *Trust) DecodeRaw(raw []byte) (*engine.Entry, error) {
	env, err := entry.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", engine.ErrMalformedEntry, err)
	}
	return t.Decrypt(env)
}

// Cursor verifies a log's entries in order, from a point whose signer and
// revocations it is given (the engine's, where it applied up to).
type Cursor struct {
	trust   *Trust
	epoch   uint64
	signer  *x509.Certificate // of epoch; nil before the first term entry
	revoked func(serial string) bool
	pending map[string]bool // revoked by entries this cursor passed
}

// NewCursor starts verifying after a point whose signer was s (the
// engine's Signer) and whose revocations revoked reports.
func (t *Trust) NewCursor(s engine.Signer, revoked func(serial string) bool) (*Cursor, error) {
	c := &Cursor{trust: t, epoch: s.Epoch, revoked: revoked, pending: map[string]bool{}}
	if len(s.Cert) > 0 {
		cert, err := parseSigner(s.Cert)
		if err != nil {
			return nil, fmt.Errorf("seal: the signer of epoch %d: %w", s.Epoch, err)
		}
		c.signer = cert
	}
	return c, nil
}

// Open verifies env as the next entry after those the cursor passed, then
// decrypts it. A sealed entry must be signed by the node certificate of
// its epoch's term entry; a term entry must start a new epoch, carry this
// cluster's id and a node certificate of the CA, valid at the entry's time
// and not revoked. Anything else is ErrUnverified. An entry of a body
// version before BodySealed is not verified (the log was not sealed then).
// Revocations in the entries the cursor passed count from the next entry
// on, whether or not the engine accepts them.
func (c *Cursor) Open(env *entry.Envelope) (*engine.Entry, error) {
	if err := c.verifyNext(env); err != nil {
		return nil, err
	}
	e, err := c.trust.Decrypt(env)
	if err != nil {
		return nil, err
	}
	c.noteRevocations(e)
	return e, nil
}

// Check is Open for an entry already opened (a journal's, decrypted as it
// was read): it verifies the envelope and passes the entry.
func (c *Cursor) Check(e *engine.Entry) error {
	if err := c.verifyNext(&e.Envelope); err != nil {
		return err
	}
	c.noteRevocations(e)
	return nil
}

// verifyNext verifies a sealed envelope as the next one.
func (c *Cursor) verifyNext(env *entry.Envelope) error {
	if env.BodyVersion < entry.BodySealed {
		return nil
	}
	if err := c.verify(env); err != nil {
		return fmt.Errorf("%w: entry %d: %w", ErrUnverified, env.Index, err)
	}
	return nil
}

// noteRevocations makes the certificates e revokes refused from the next
// entry on.
func (c *Cursor) noteRevocations(e *engine.Entry) {
	for i := range e.Commands {
		if e.Commands[i].Op == engine.OpRevokeCertificate {
			c.pending[e.Commands[i].Serial] = true
		}
	}
}

// Revokes reports whether e holds a certificate revocation: verifying the
// entries after it exactly needs the state after it applied.
func Revokes(e *engine.Entry) bool {
	for i := range e.Commands {
		if e.Commands[i].Op == engine.OpRevokeCertificate {
			return true
		}
	}
	return false
}

func (c *Cursor) verify(env *entry.Envelope) error {
	signer := c.signer
	if len(env.Cert) > 0 {
		cert, err := c.termSigner(env)
		if err != nil {
			return err
		}
		signer = cert
	} else if signer == nil || env.Epoch != c.epoch {
		return fmt.Errorf("epoch %d has no term entry before it (the last was of epoch %d)", env.Epoch, c.epoch)
	}
	if serial := certs.Serial(signer); c.revoked(serial) || c.pending[serial] {
		return fmt.Errorf("signed by certificate %s, which is revoked", serial)
	}
	pub, ok := signer.PublicKey.(*ecdsa.PublicKey)
	h := env.SigningHash(c.trust.Cluster)
	if !ok || !ecdsa.VerifyASN1(pub, h[:], env.Sig) {
		return errors.New("the signature does not verify")
	}
	if len(env.Cert) > 0 {
		c.epoch, c.signer = env.Epoch, signer
	}
	return nil
}

// termSigner checks a term entry's certificate: a node certificate of the
// CA, valid at the entry's time, for this cluster, of a new epoch.
func (c *Cursor) termSigner(env *entry.Envelope) (*x509.Certificate, error) {
	if env.Epoch <= c.epoch && c.signer != nil {
		return nil, fmt.Errorf("a second term entry in epoch %d (one signer per epoch; the last began %d)", env.Epoch, c.epoch)
	}
	if !bytes.Equal(env.Cluster, c.trust.Cluster) {
		return nil, errors.New("a term entry of another cluster")
	}
	if c.trust.Roots == nil { // x509 would take the system's roots
		return nil, errors.New("no CA bundle to verify the term entry's certificate against")
	}
	cert, err := x509.ParseCertificate(env.Cert)
	if err != nil {
		return nil, fmt.Errorf("the term entry's certificate: %w", err)
	}
	opts := x509.VerifyOptions{Roots: c.trust.Roots, CurrentTime: time.UnixMilli(env.TimeMs), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	if _, err := cert.Verify(opts); err != nil {
		return nil, fmt.Errorf("the term entry's certificate at the entry's time: %w", err)
	}
	if _, ok := certs.NodeID(cert); !ok {
		return nil, fmt.Errorf("the term entry's certificate (%s) is not a node certificate", certs.Describe(cert))
	}
	return cert, nil
}
