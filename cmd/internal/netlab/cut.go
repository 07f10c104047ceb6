package netlab

import (
	"fmt"
	"os/exec"
	"strings"
)

// Rule drops the packets From sends To: all of them, or, when Port is
// set, those of TCP connections to or from that port (on either end). A
// cut in both directions is two rules. One direction alone is what a
// broken route or a one-sided firewall does: From's SYNs, data and ACKs
// vanish, while To's still arrive.
type Rule struct {
	From, To *Host
	Port     int
}

func (r Rule) String() string {
	s := r.From.Name + "->" + r.To.Name
	if r.Port != 0 {
		s += fmt.Sprintf(":%d", r.Port)
	}
	return s
}

// initTables gives every host the lab's nft table, with an output chain
// that accepts everything until a Cut.
func (l *Lab) initTables() error {
	for _, h := range l.hosts {
		script := fmt.Sprintf("add table inet %s\nadd chain inet %s output { type filter hook output priority 0; policy accept; }\n", l.tag(), l.tag())
		if err := h.nft(script); err != nil {
			return err
		}
	}
	return nil
}

// Cut makes rules the lab's whole partition, replacing the one before:
// each host's output chain drops exactly what the rules say it sends.
func (l *Lab) Cut(rules ...Rule) error {
	by := map[*Host][]Rule{}
	for _, r := range rules {
		if r.From.lab != l || r.To.lab != l {
			return fmt.Errorf("netlab: rule %v names a host of another lab", r)
		}
		by[r.From] = append(by[r.From], r)
	}
	for _, h := range l.hosts {
		var b strings.Builder
		fmt.Fprintf(&b, "flush chain inet %s output\n", l.tag())
		for _, r := range by[h] {
			if r.Port == 0 {
				fmt.Fprintf(&b, "add rule inet %s output ip daddr %s drop\n", l.tag(), r.To.Addr)
				continue
			}
			fmt.Fprintf(&b, "add rule inet %s output ip daddr %s tcp dport %d drop\n", l.tag(), r.To.Addr, r.Port)
			fmt.Fprintf(&b, "add rule inet %s output ip daddr %s tcp sport %d drop\n", l.tag(), r.To.Addr, r.Port)
		}
		if err := h.nft(b.String()); err != nil {
			return err
		}
	}
	return nil
}

// Heal removes every cut.
func (l *Lab) Heal() error { return l.Cut() }

func (h *Host) nft(script string) error {
	cmd := exec.Command("ip", "netns", "exec", h.NS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("netlab: nft on %s: %w: %s", h.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Isolate cuts h from every other host, both ways.
func Isolate(h *Host, all []*Host) []Rule {
	return Split([]*Host{h}, others(all, h))
}

// Split cuts every host of a from every host of b, both ways.
func Split(a, b []*Host) []Rule {
	var rules []Rule
	for _, x := range a {
		for _, y := range b {
			rules = append(rules, Pair(x, y)...)
		}
	}
	return rules
}

// Pair cuts a and b from each other, both ways.
func Pair(a, b *Host) []Rule { return []Rule{{From: a, To: b}, {From: b, To: a}} }

// PairPort cuts the TCP connections between a and b that use port on
// either end (a service of either host), both ways.
func PairPort(a, b *Host, port int) []Rule {
	return []Rule{{From: a, To: b, Port: port}, {From: b, To: a, Port: port}}
}

// OneWay drops what from sends to each of to; what they send from
// arrives.
func OneWay(from *Host, to ...*Host) []Rule {
	var rules []Rule
	for _, t := range to {
		rules = append(rules, Rule{From: from, To: t})
	}
	return rules
}

func others(all []*Host, h *Host) []*Host {
	var out []*Host
	for _, x := range all {
		if x != h {
			out = append(out, x)
		}
	}
	return out
}
