// Package zkserver runs Apache ZooKeeper servers from Debian's zookeeper
// package as plain processes: it writes each server's zoo.cfg and myid,
// builds the java command line, and asks a server for its role with the
// `srvr` four-letter command. Tests (zktest) and the local dev cluster
// (bankctl dev) both use it.
package zkserver

import (
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
	Dir          string // holds zoo.cfg and data/
	ClientPort   int
	PeerPort     int
	ElectionPort int
}

// Addr is the server's client address.
func (s Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.ClientPort) }

// ConfigPath is where WriteConfig puts zoo.cfg.
func (s Server) ConfigPath() string { return filepath.Join(s.Dir, "zoo.cfg") }

// WriteConfig writes s's zoo.cfg (and myid for an ensemble of several),
// for a loopback ensemble of all. Sessions may last 2..20 ticks.
func WriteConfig(s Server, all []Server, tick time.Duration) error {
	data := filepath.Join(s.Dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return fmt.Errorf("zkserver: %w", err)
	}
	cfg := fmt.Sprintf(`tickTime=%d
initLimit=10
syncLimit=5
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
maxClientCnxns=0
4lw.commands.whitelist=srvr,mntr,ruok
admin.enableServer=false
autopurge.purgeInterval=1
autopurge.snapRetainCount=3
`, tick.Milliseconds(), data, s.ClientPort)
	if len(all) > 1 {
		for _, o := range all {
			cfg += fmt.Sprintf("server.%d=127.0.0.1:%d:%d\n", o.ID, o.PeerPort, o.ElectionPort)
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
// write p99 (docs/benchmarks.md); C1 only, for quick start-up.
func Command(s Server, heapMB int) *exec.Cmd {
	return exec.Command("java", fmt.Sprintf("-Xmx%dm", heapMB), "-XX:+UseParallelGC", "-XX:TieredStopAtLevel=1",
		"-Dzookeeper.jmx.log4j.disable=true", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
		"-cp", classpath(), "org.apache.zookeeper.server.quorum.QuorumPeerMain", s.ConfigPath())
}

// classpath is the jar plus a logging binding when one is installed.
func classpath() string {
	cp := []string{Jar}
	if _, err := os.Stat("/usr/share/java/slf4j-simple.jar"); err == nil {
		cp = append(cp, "/usr/share/java/slf4j-simple.jar")
	}
	return strings.Join(cp, ":")
}

// Mode asks the server at addr for its role with `srvr`: leader, follower
// or standalone; "" when it does not answer or serves no clients yet.
func Mode(addr string) string {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("srvr")); err != nil {
		return ""
	}
	b, _ := io.ReadAll(c)
	for _, line := range strings.Split(string(b), "\n") {
		if m, ok := strings.CutPrefix(line, "Mode: "); ok {
			return strings.TrimSpace(m)
		}
	}
	return ""
}

// Serving reports whether a mode means the server serves clients.
func Serving(mode string) bool {
	return mode == "leader" || mode == "follower" || mode == "standalone"
}
