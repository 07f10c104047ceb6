package netlab

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// newLab builds a lab for one test and removes it after, even on failure;
// without root it fails, saying why.
func newLab(t *testing.T, names ...string) *Lab {
	t.Helper()
	l, err := New(names...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

// serve runs handle on each connection to h:port until the test ends.
func serve(t *testing.T, h *Host, port string, handle func(net.Conn)) {
	t.Helper()
	ln, err := h.Listen(h.Addr + ":" + port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
}

// echo serves on h:port, answering each line with the line.
func echo(t *testing.T, h *Host, port string) {
	t.Helper()
	serve(t, h, port, func(c net.Conn) { io.Copy(c, c) })
}

// reach dials from h to addr and sends one line back and forth; it
// returns the round trip, or an error within the timeout.
func reach(from *Host, addr string, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := from.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	start := time.Now()
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, err
	}
	if line != "ping\n" {
		return 0, io.ErrUnexpectedEOF
	}
	return time.Since(start), nil
}

func mustReach(t *testing.T, from *Host, addr string) {
	t.Helper()
	if _, err := reach(from, addr, 5*time.Second); err != nil {
		t.Fatalf("%s cannot reach %s: %v", from.Name, addr, err)
	}
}

func mustNotReach(t *testing.T, from *Host, addr string) {
	t.Helper()
	if _, err := reach(from, addr, 700*time.Millisecond); err == nil {
		t.Fatalf("%s reaches %s through the cut", from.Name, addr)
	}
}

func TestCutsDropWhatTheySayAndHealRestores(t *testing.T) {
	l := newLab(t, "a", "b", "c")
	a, b, c := l.Host("a"), l.Host("b"), l.Host("c")
	for _, h := range l.Hosts() {
		echo(t, h, "7000")
		echo(t, h, "7001")
	}
	mustReach(t, a, b.Addr+":7000")
	mustReach(t, c, a.Addr+":7001")

	// One direction: what a sends b is dropped, so neither can open a
	// connection to the other (a's SYN, or its SYN-ACK, is lost); c is
	// untouched.
	if err := l.Cut(OneWay(a, b)...); err != nil {
		t.Fatal(err)
	}
	mustNotReach(t, a, b.Addr+":7000")
	mustNotReach(t, b, a.Addr+":7000")
	mustReach(t, a, c.Addr+":7000")
	mustReach(t, b, c.Addr+":7000")

	// One pair, one port: a and b still talk on 7001.
	if err := l.Cut(PairPort(a, b, 7000)...); err != nil {
		t.Fatal(err)
	}
	mustNotReach(t, a, b.Addr+":7000")
	mustNotReach(t, b, a.Addr+":7000")
	mustReach(t, a, b.Addr+":7001")

	// Isolation: c reaches nobody and nobody reaches c; a and b talk.
	if err := l.Cut(Isolate(c, l.Hosts())...); err != nil {
		t.Fatal(err)
	}
	mustNotReach(t, c, a.Addr+":7000")
	mustNotReach(t, b, c.Addr+":7000")
	mustReach(t, a, b.Addr+":7000")

	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	mustReach(t, c, a.Addr+":7000")
	mustReach(t, a, b.Addr+":7000")
}

func TestTwoLabsAtOnceNeitherSeeNorRemoveEachOther(t *testing.T) {
	one := newLab(t, "a", "b")
	two := newLab(t, "a", "b")
	echo(t, one.Host("b"), "7000")
	mustReach(t, one.Host("a"), one.Host("b").Addr+":7000")
	// Same addresses, other bridge: nothing listens on two's b.
	mustNotReach(t, two.Host("a"), two.Host("b").Addr+":7000")

	if err := Sweep(); err != nil { // the owner (this process) lives: both stay
		t.Fatal(err)
	}
	if err := two.Close(); err != nil {
		t.Fatal(err)
	}
	mustReach(t, one.Host("a"), one.Host("b").Addr+":7000")
	for _, ns := range Namespaces(os.Getpid()) {
		if strings.Contains(ns, two.Run) {
			t.Fatalf("%s is left after its lab closed", ns)
		}
	}
}

func TestCloseKillsItsProcessesAndSweepTakesOnlyTheDead(t *testing.T) {
	l, err := New("a")
	if err != nil {
		t.Fatal(err)
	}
	sleeper := l.Host("a").Command("sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { sleeper.Wait(); close(exited) }()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("a process of the lab outlived its Close")
	}
	for _, ns := range Namespaces(os.Getpid()) {
		if strings.Contains(ns, l.Run) {
			t.Fatalf("%s is left after Close", ns)
		}
	}

	// A crashed run: a namespace of the lab's form whose owner is dead
	// (pid_max is never a process's PID), and one of a live other owner.
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	deadPID, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	orphan := (&Lab{Run: "0dead000", Owner: deadPID}).nsName("a")
	other := (&Lab{Run: "0a11fe00", Owner: 1}).nsName("a")
	for _, ns := range []string{orphan, other} {
		if err := run("ip", "netns", "add", ns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { run("ip", "netns", "delete", ns) })
	}
	if err := Sweep(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/run/netns/" + orphan); !os.IsNotExist(err) {
		t.Fatalf("Sweep left %s, whose owner is dead", orphan)
	}
	if _, err := os.Stat("/run/netns/" + other); err != nil {
		t.Fatalf("Sweep removed %s, whose owner (PID 1) lives: %v", other, err)
	}
}

func TestSlowDownDelaysEveryConnectionOfTheHostBothWays(t *testing.T) {
	l := newLab(t, "a", "b", "c")
	a, b, c := l.Host("a"), l.Host("b"), l.Host("c")
	echo(t, a, "7000")
	echo(t, b, "7000")
	echo(t, c, "7000")
	whoami(t, b, "7001")
	s, err := l.SlowDown(b, Link{Delay: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Into b and out of b: the line goes and comes back through the
	// proxy, 100 ms each way.
	for _, c := range []struct {
		from *Host
		to   string
	}{{a, b.Addr + ":7000"}, {b, a.Addr + ":7000"}} {
		rtt, err := reach(c.from, c.to, 5*time.Second)
		if err != nil || rtt < 200*time.Millisecond {
			t.Fatalf("%s to %s through the slow link: %v after %v, want at least 200ms", c.from.Name, c.to, err, rtt)
		}
	}
	// The other end sees the true source: the proxy dials from the host
	// that opened the connection.
	if got := ask(t, a, b.Addr+":7001"); got != a.Addr {
		t.Fatalf("b saw a's connection come from %q, want %s", got, a.Addr)
	}
	// a and c are not slowed: no proxy takes their connection.
	before := served(s)
	mustReach(t, a, c.Addr+":7000")
	if n := served(s); n != before {
		t.Fatalf("a to c, neither slowed, went through a proxy (%d connections, then %d)", before, n)
	}
	// After Close the redirect is gone with the proxies: direct again.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mustReach(t, a, b.Addr+":7000")
}

func TestSlowAllDelaysEveryPair(t *testing.T) {
	l := newLab(t, "a", "b", "c")
	for _, h := range l.Hosts() {
		echo(t, h, "7000")
	}
	s, err := l.SlowAll(Link{Delay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, from := range l.Hosts() {
		for _, to := range others(l.Hosts(), from) {
			if rtt, err := reach(from, to.Addr+":7000", 5*time.Second); err != nil || rtt < 100*time.Millisecond {
				t.Fatalf("%s to %s: %v after %v, want at least 100ms", from.Name, to.Name, err, rtt)
			}
		}
	}
}

// served counts the connections s's proxies took.
func served(s *Slow) int64 {
	var n int64
	for _, p := range s.proxies {
		n += p.served.Load()
	}
	return n
}

// whoami serves on h:port, answering each connection with the address it
// came from.
func whoami(t *testing.T, h *Host, port string) {
	t.Helper()
	serve(t, h, port, func(c net.Conn) {
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		c.Write([]byte(host + "\n"))
	})
}

// ask reads the line the server at addr sends.
func ask(t *testing.T, from *Host, addr string) string {
	t.Helper()
	c, err := from.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line)
}
