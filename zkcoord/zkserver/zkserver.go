// Package zkserver runs Apache ZooKeeper servers from Debian's zookeeper
// package as plain processes: it writes each server's zoo.cfg and myid,
// builds the java command line, and asks a server for its role with the
// `srvr` four-letter command. Tests (zktest) and the local dev cluster
// (bankctl dev) both use it.
package zkserver

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Jar is the ZooKeeper jar from Debian's package.
const Jar = "/usr/share/java/zookeeper.jar"

// Installed reports whether ZooKeeper and java are available, with the
// fix in the error.
func Installed() error {
	if _, err := os.Stat(Jar); err != nil {
		return fmt.Errorf("zkserver: ZooKeeper is not installed (%s missing): run `make zookeeper` or `apt-get install -y zookeeper`", Jar)
	}
	if _, err := exec.LookPath("java"); err != nil {
		return fmt.Errorf("zkserver: java not found: install a JRE (Debian: apt-get install -y default-jre-headless)")
	}
	return nil
}

// Server is one member of an ensemble.
type Server struct {
	ID           int    // 1-based
	Host         string // the address it listens on and peers reach it at (default 127.0.0.1)
	Dir          string // holds zoo.cfg and data/
	ClientPort   int    // the secureClientPort when TLS is set, and then the only one
	PeerPort     int
	ElectionPort int
	TLS          *TLS // nil: plaintext everywhere
	// Optimize runs the JVM's optimizing compiler (C2) too. TLS needs it:
	// AES-GCM's intrinsics are C2's, and with C1 alone large appends over
	// TLS ran at a third of the speed (docs/benchmarks.md). Short-lived
	// test servers start faster, and idle on less CPU, without it.
	Optimize bool
}

// TLS is what a server needs to speak TLS (Netty) to clients, which must
// present a certificate of the trust store, and to the other servers of
// its ensemble (sslQuorum, hostnames verified).
type TLS struct {
	KeyStore   string // PEM: the server's key, then its certificate (certs.ZooKeeperFiles)
	TrustStore string // PEM: the CAs that clients' and servers' certificates must chain to
	// SuperDigest, when set, is "super:<base64 SHA-1 of super:password>"
	// (SuperDigest): ZooKeeper's super user, which passes every ACL.
	SuperDigest string
}

// SuperDigest is the digest a TLS.SuperDigest holds for password.
func SuperDigest(password string) string {
	sum := sha1.Sum([]byte("super:" + password))
	return "super:" + base64.StdEncoding.EncodeToString(sum[:])
}

// tls13Suites are TLS 1.3's cipher suites: ZooKeeper's default list
// holds TLS 1.2's alone, and with only TLS 1.3 enabled no handshake
// would find one.
const tls13Suites = "TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384,TLS_CHACHA20_POLY1305_SHA256"

// tlsConfig is zoo.cfg's TLS part: no plaintext port, client
// certificates required, the quorum over TLS too.
func (t *TLS) config(s Server) string {
	return fmt.Sprintf(`secureClientPort=%d
secureClientPortAddress=%[5]s
serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory
authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider
ssl.keyStore.location=%[2]s
ssl.keyStore.type=PEM
ssl.trustStore.location=%[3]s
ssl.trustStore.type=PEM
ssl.clientAuth=need
ssl.protocol=TLSv1.3
ssl.enabledProtocols=TLSv1.3
ssl.ciphersuites=%[4]s
sslQuorum=true
ssl.quorum.keyStore.location=%[2]s
ssl.quorum.keyStore.type=PEM
ssl.quorum.trustStore.location=%[3]s
ssl.quorum.trustStore.type=PEM
ssl.quorum.hostnameVerification=true
ssl.quorum.protocol=TLSv1.3
ssl.quorum.enabledProtocols=TLSv1.3
ssl.quorum.ciphersuites=%[4]s
`, s.ClientPort, t.KeyStore, t.TrustStore, tls13Suites, s.host())
}

// Addr is the server's client address.
func (s Server) Addr() string { return net.JoinHostPort(s.host(), fmt.Sprint(s.ClientPort)) }

func (s Server) host() string {
	if s.Host == "" {
		return "127.0.0.1"
	}
	return s.Host
}

// ConfigPath is where WriteConfig puts zoo.cfg.
func (s Server) ConfigPath() string { return filepath.Join(s.Dir, "zoo.cfg") }

// WriteConfig writes s's zoo.cfg (and myid for an ensemble of several),
// for the ensemble of all. Sessions may last 2..20 ticks.
func WriteConfig(s Server, all []Server, tick time.Duration) error {
	data := filepath.Join(s.Dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return fmt.Errorf("zkserver: %w", err)
	}
	cfg := fmt.Sprintf(`tickTime=%d
initLimit=10
syncLimit=5
dataDir=%s
maxClientCnxns=0
4lw.commands.whitelist=srvr,mntr,ruok
admin.enableServer=false
autopurge.purgeInterval=1
autopurge.snapRetainCount=3
`, tick.Milliseconds(), data)
	if s.TLS != nil {
		cfg += s.TLS.config(s)
	} else {
		cfg += fmt.Sprintf("clientPort=%d\nclientPortAddress=%s\n", s.ClientPort, s.host())
	}
	if len(all) > 1 {
		for _, o := range all {
			cfg += fmt.Sprintf("server.%d=%s:%d:%d\n", o.ID, o.host(), o.PeerPort, o.ElectionPort)
		}
		if err := os.WriteFile(filepath.Join(data, "myid"), []byte(fmt.Sprint(s.ID)), 0o644); err != nil {
			return fmt.Errorf("zkserver: %w", err)
		}
	}
	if err := os.WriteFile(s.ConfigPath(), []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("zkserver: %w", err)
	}
	return nil
}

// Command is the java command that runs s in the foreground with heapMB
// megabytes of heap (at least 512 is advised: less has crashed under
// batched writes). The parallel collector's young collections are shorter
// than the serial one's (10-25 ms under load), which shows in bankd's
// write p99 (docs/benchmarks.md); C1 only, for quick start-up, unless
// s.Optimize.
func Command(s Server, heapMB int) *exec.Cmd {
	args := []string{fmt.Sprintf("-Xmx%dm", heapMB), "-XX:+UseParallelGC"}
	if !s.Optimize {
		args = append(args, "-XX:TieredStopAtLevel=1")
	}
	args = append(args,
		"-Dzookeeper.jmx.log4j.disable=true", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
	if s.TLS != nil && s.TLS.SuperDigest != "" {
		// A system property, not zoo.cfg: the server reads it only there.
		args = append(args, "-Dzookeeper.DigestAuthenticationProvider.superDigest="+s.TLS.SuperDigest)
	}
	args = append(args, "-cp", Classpath(), "org.apache.zookeeper.server.quorum.QuorumPeerMain", s.ConfigPath())
	return exec.Command("java", args...)
}

// Classpath is the jar, the Netty jars its TLS needs (Debian's jar
// manifest leaves netty-codec and netty-resolver out: handshakes fail with
// NoClassDefFoundError io/netty/handler/codec/ByteToMessageDecoder), and
// a logging binding when one is installed.
func Classpath() string {
	cp := []string{Jar}
	for _, jar := range []string{"netty-codec.jar", "netty-resolver.jar", "slf4j-simple.jar"} {
		if _, err := os.Stat("/usr/share/java/" + jar); err == nil {
			cp = append(cp, "/usr/share/java/"+jar)
		}
	}
	return strings.Join(cp, ":")
}

// Mode asks the server at addr for its role with `srvr` (over TLS when
// tc is set): leader, follower or standalone; "" when it does not answer
// or serves no clients yet.
func Mode(addr string, tc *tls.Config) string {
	b, err := FourLetter(addr, "srvr", tc)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if m, ok := strings.CutPrefix(line, "Mode: "); ok {
			return strings.TrimSpace(m)
		}
	}
	return ""
}

// FourLetter sends a four-letter command (over TLS when tc is set) and
// returns the answer, read until the server closes, within 2 s.
func FourLetter(addr, cmd string, tc *tls.Config) ([]byte, error) {
	d := &net.Dialer{Timeout: time.Second}
	var c net.Conn
	var err error
	if tc != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, tc)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd)); err != nil {
		return nil, err
	}
	return io.ReadAll(c)
}

// NewSecret is 16 random bytes in hex: a password for ZooKeeper's super
// user or bankd's digest credentials.
func NewSecret() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// Serving reports whether a mode means the server serves clients.
func Serving(mode string) bool {
	return mode == "leader" || mode == "follower" || mode == "standalone"
}
