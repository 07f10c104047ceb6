package peer

import (
	"crypto/x509"
	"fmt"
	"net/http"

	"github.com/zkbank/zkbank/certs"
	"github.com/zkbank/zkbank/cmd/internal/tlsconf"
)

// Client is the HTTP client of a node's calls to its peers: mutual TLS
// with the node's own certificate, keep-alive connections (a TLS
// handshake costs far more than a request), resumed sessions, and only a
// node certificate of the cluster that revoked does not name accepted on
// the other end. Without material (bankd --insecure) it is plain HTTP.
func Client(mat *tlsconf.Material, revoked func(serial string) bool) *http.Client {
	t := &http.Transport{MaxIdleConnsPerHost: 256}
	if mat != nil {
		t.TLSClientConfig = mat.Client(func(leaf *x509.Certificate) error {
			if err := tlsconf.NodeOnly(leaf); err != nil {
				return err
			}
			if revoked(certs.Serial(leaf)) {
				return fmt.Errorf("peer: the certificate %s of %q is revoked", certs.Serial(leaf), leaf.Subject.CommonName)
			}
			return nil
		})
	}
	return &http.Client{Transport: t}
}
