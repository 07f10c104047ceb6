package seal

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/zkbank/zkbank/certs"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/snapshot"
)

// snapshotTag starts what a snapshot signature signs (snapshotHash).
const snapshotTag = "zkbank snapshot signature v1\x00"

// snapshotHash is what a snapshot's signature signs: a tag, the cluster's
// id and the file's checksum (which covers the header and the state).
func snapshotHash(cluster []byte, checksum engine.Hash) []byte {
	h := sha256.New()
	h.Write([]byte(snapshotTag))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(cluster))))
	h.Write(cluster)
	h.Write(checksum[:])
	return h.Sum(nil)
}

// SnapshotSigner signs snapshot files (snapshot.Store.SignWith) with the
// node's key as identity gives it at each snapshot. The block is the
// signer's certificate (u32 length, DER) and the signature.
func (t *Trust) SnapshotSigner(identity func() (crypto.Signer, []byte)) func(engine.Hash) ([]byte, error) {
	return func(checksum engine.Hash) ([]byte, error) {
		key, cert := identity()
		if key == nil {
			return nil, errors.New("seal: no key to sign the snapshot with")
		}
		sig, err := key.Sign(rand.Reader, snapshotHash(t.Cluster, checksum), crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("seal: sign snapshot: %w", err)
		}
		block := binary.BigEndian.AppendUint32(nil, uint32(len(cert)))
		return append(append(block, cert...), sig...), nil
	}
}

// CheckSnapshot verifies a loaded snapshot's signature when its state is
// of a sealed log (body version 3 on): it must be signed, and
// VerifySnapshot must pass. A state from before sealing needs none.
func (t *Trust) CheckSnapshot(meta snapshot.Meta, e *engine.Engine) error {
	switch {
	case e.BodyVersion() < engine.BodyV3:
		return nil
	case !meta.Signed:
		return fmt.Errorf("%w: snapshot at %d of a sealed log is not signed", ErrUnverified, meta.Index)
	}
	return t.VerifySnapshot(meta.Checksum, meta.Signature, e)
}

// VerifySnapshot checks a snapshot's signature block against its
// checksum: signed for this cluster by a node certificate of the CA,
// valid at the state's own log time, not revoked in that state.
func (t *Trust) VerifySnapshot(checksum engine.Hash, block []byte, e *engine.Engine) error {
	if len(block) < 4 || uint64(len(block)-4) < uint64(binary.BigEndian.Uint32(block)) {
		return fmt.Errorf("%w: snapshot at %d: a malformed signature block", ErrUnverified, e.Index())
	}
	if t.Roots == nil { // x509 would take the system's roots
		return fmt.Errorf("%w: snapshot at %d: no CA bundle to verify its signer against", ErrUnverified, e.Index())
	}
	n := binary.BigEndian.Uint32(block)
	cert, err := x509.ParseCertificate(block[4 : 4+n])
	if err != nil {
		return fmt.Errorf("%w: snapshot at %d: the signer's certificate: %w", ErrUnverified, e.Index(), err)
	}
	opts := x509.VerifyOptions{Roots: t.Roots, CurrentTime: time.UnixMilli(e.TimeMs()), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	if _, err := cert.Verify(opts); err != nil {
		return fmt.Errorf("%w: snapshot at %d: the signer's certificate: %w", ErrUnverified, e.Index(), err)
	}
	if _, ok := certs.NodeID(cert); !ok {
		return fmt.Errorf("%w: snapshot at %d: signed by %s, not a node", ErrUnverified, e.Index(), certs.Describe(cert))
	}
	if _, revoked := e.Revoked(certs.Serial(cert)); revoked {
		return fmt.Errorf("%w: snapshot at %d: signed by revoked certificate %s", ErrUnverified, e.Index(), certs.Serial(cert))
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !ecdsa.VerifyASN1(pub, snapshotHash(t.Cluster, checksum), block[4+n:]) {
		return fmt.Errorf("%w: snapshot at %d: the signature does not verify", ErrUnverified, e.Index())
	}
	return nil
}
