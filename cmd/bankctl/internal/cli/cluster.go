package cli

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/zkbank/zkbank/cmd/internal/client"
	"github.com/zkbank/zkbank/cmd/internal/wire"
)

// lagMaxDefault is how far behind the log head a member may be before
// status calls it lagging.
const lagMaxDefault = 1000

func (a *app) clusterCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Look at the cluster"}
	var lagMax uint64
	status := &cobra.Command{
		Use:   "status [--lag-max N]",
		Short: "The health check: members expected and live, the leader, lag, ZooKeeper, state hashes; a verdict and its exit code",
		Long: `Ask the cluster how it is, then ask every live member directly (its
/readyz and its digest), and end with a one-line verdict:

  healthy   every expected member is live, ready, within --lag-max of the
            log head, and at one state hash; the leader answers; every
            ZooKeeper server serves                              (exit 0)
  degraded  the bank serves, but something needs a look: a member down,
            not ready or lagging, a ZooKeeper server down      (exit 6)
  down      no leader answers, no endpoint answers, or ZooKeeper lost
            its quorum                                          (exit 4)

State hashes that differ at one index are exit 5: stop and read the
runbook (docs/operations.md). The comparison is made at one log index on
every node (GET /v1/digest?at=N), so it holds while writes go on.`,
		Example: `  bankctl cluster status
  bankctl cluster status -o json | jq .verdict
  bankctl cluster status --lag-max 100 || page-the-operator`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			h, err := a.health(lagMax)
			if err != nil {
				return err
			}
			if perr := a.showHealth(h); perr != nil {
				return perr
			}
			return h.exit()
		},
	}
	status.Flags().Uint64Var(&lagMax, "lag-max", lagMaxDefault, "log entries a member may be behind the head before it counts as lagging")
	cmd.AddCommand(status, a.removeNode())
	return cmd
}

func (a *app) removeNode() *cobra.Command {
	return &cobra.Command{
		Use:   "remove-node ID",
		Short: "Remove a stopped node for good: revoke every certificate it ran with, and stop expecting it (admin)",
		Long: `Remove a node that has stopped and will not come back. Every certificate
it ran with (its registry record keeps their serials) is revoked through
the log, so every node refuses them from that index on; then its registry
record is deleted, so the cluster no longer waits for it (a body version
switch waits for every expected member). A running node is refused: stop
it first (and wait out its ZooKeeper session if it was killed). Running
the command again after a failure is safe. To bring the host back, give
it a new node certificate (bankctl certs node).`,
		Example: "  bankctl cluster remove-node n3",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var out wire.MemberRemoval
			if _, err := a.write("DELETE", "/v1/admin/members/"+args[0], nil, "", &out); err != nil {
				return err
			}
			if done, err := a.showJSON(out); done {
				return err
			}
			if len(out.Revoked) == 0 {
				fmt.Fprintf(a.stdout, "%s removed; it ran without certificates, so none was revoked\n", out.ID)
				return nil
			}
			fmt.Fprintf(a.stdout, "%s removed: certificates %s revoked at index %d\n", out.ID, strings.Join(out.Revoked, ", "), out.Index)
			return nil
		},
	}
}

// health is what cluster status found.
type health struct {
	Verdict      string                 `json:"verdict"` // healthy, degraded or down
	Problems     []string               `json:"problems"`
	Leader       *wire.Leader           `json:"leader,omitempty"`
	LogHead      uint64                 `json:"log_head"`
	TrimmedBelow uint64                 `json:"trimmed_below"`
	BodyVersion  uint32                 `json:"body_version"`
	Keys         wire.KeyMemory         `json:"keys"`
	History      wire.HistorySpan       `json:"history"`
	Members      []memberHealth         `json:"members"`
	ZooKeeper    []wire.ZooKeeperServer `json:"zookeeper"`
	StateHashes  hashCheck              `json:"state_hashes"`

	down, diverged bool
}

type memberHealth struct {
	wire.Member
	Reachable bool   `json:"reachable"`
	Ready     bool   `json:"ready"`
	Lag       uint64 `json:"lag"`
	Session   string `json:"zookeeper_session,omitempty"`
	Detail    string `json:"detail,omitempty"`
}

// hashCheck is the comparison of the members' state hashes at one index.
type hashCheck struct {
	Index  uint64            `json:"index,omitempty"`
	Equal  bool              `json:"equal"`
	Hashes map[string]string `json:"hashes,omitempty"`
	Detail string            `json:"detail,omitempty"`
}

func (h *health) problem(down bool, format string, args ...any) {
	h.Problems = append(h.Problems, fmt.Sprintf(format, args...))
	h.down = h.down || down
}

// exit is the status's exit code (nil when healthy).
func (h *health) exit() error {
	switch {
	case h.diverged:
		return exitError(ExitMismatch)
	case h.Verdict == "down":
		return exitError(ExitUnavailable)
	case h.Verdict == "degraded":
		return exitError(ExitDegraded)
	}
	return nil
}

// health gathers the cluster's view and probes every live member.
func (a *app) health(lagMax uint64) (*health, error) {
	var cl wire.Cluster
	if _, err := a.read("/v1/cluster", &cl); err != nil {
		h := &health{Verdict: "down", Problems: []string{"no endpoint answers: " + err.Error()}, down: true}
		return h, nil
	}
	h := &health{Leader: cl.Leader, LogHead: cl.LogHead, TrimmedBelow: cl.TrimmedBelow, BodyVersion: cl.BodyVersion, Keys: cl.Keys, History: cl.History, ZooKeeper: cl.ZooKeeper.Servers, Problems: []string{}}
	c, err := a.api()
	if err != nil {
		return nil, err
	}
	h.Members = probeMembers(c, cl.Members)
	for i := range h.Members {
		if m := &h.Members[i]; m.Live && h.LogHead > m.Applied {
			m.Lag = h.LogHead - m.Applied
		}
	}
	h.judgeMembers(lagMax)
	h.judgeZooKeeper()
	if cl.Stale {
		h.problem(true, "%s cannot read ZooKeeper (session %s): members and head are its last view", cl.Self, cl.ZooKeeper.Session)
	}
	h.StateHashes = compareHashes(c, h.Members)
	if !h.StateHashes.Equal && h.StateHashes.Index > 0 {
		h.diverged = true
		h.problem(true, "state hashes differ at index %d: %s", h.StateHashes.Index, h.StateHashes.Detail)
	}
	switch {
	case h.down:
		h.Verdict = "down"
	case len(h.Problems) > 0:
		h.Verdict = "degraded"
	default:
		h.Verdict = "healthy"
	}
	return h, nil
}

func (h *health) judgeMembers(lagMax uint64) {
	leaderOK := false
	for _, m := range h.Members {
		switch {
		case m.Expected && !m.Live:
			h.problem(false, "%s is expected but not live", m.ID)
		case m.Live && !m.Reachable && m.Role != "leader": // the leader's is said below
			h.problem(false, "%s does not answer: %s", m.ID, m.Detail)
		case m.Live && !m.Ready:
			h.problem(false, "%s is not ready: %s", m.ID, m.Detail)
		case m.Lag > lagMax:
			h.problem(false, "%s lags %d entries behind the log head", m.ID, m.Lag)
		}
		if m.Live && !m.Expected {
			h.problem(false, "%s is live but not in the registry of expected members", m.ID)
		}
		leaderOK = leaderOK || (m.Role == "leader" && m.Reachable)
	}
	if h.Leader == nil {
		h.problem(true, "no leader")
	} else if !leaderOK {
		h.problem(true, "the leader %s does not answer", h.Leader.ID)
	}
	if len(h.Problems) > 0 && h.Leader != nil && !leaderOK {
		for _, m := range h.Members {
			if m.Role == "leader" && m.Detail != "" {
				h.Problems[len(h.Problems)-1] += ": " + m.Detail
			}
		}
	}
}

func (h *health) judgeZooKeeper() {
	serving := 0
	for _, s := range h.ZooKeeper {
		if s.Mode == "leader" || s.Mode == "follower" || s.Mode == "standalone" {
			serving++
		} else {
			h.problem(false, "ZooKeeper server %s does not serve", s.Addr)
		}
	}
	if serving <= len(h.ZooKeeper)/2 {
		h.problem(true, "ZooKeeper has no quorum: %d of %d servers serve", serving, len(h.ZooKeeper))
	}
}

// probeTimeout bounds each direct call to a member.
const probeTimeout = 2 * time.Second

// probeMembers asks every live member's /readyz, at once.
func probeMembers(c *client.Client, members []wire.Member) []memberHealth {
	out := make([]memberHealth, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		out[i].Member = m
		if m.Live {
			wg.Go(func() { probe(c, &out[i]) })
		}
	}
	wg.Wait()
	return out
}

// readiness is a member's /readyz answer.
type readiness struct {
	Status    string `json:"status"`
	Applied   uint64 `json:"applied"`
	ZooKeeper string `json:"zookeeper"`
	Detail    string `json:"detail"`
}

func probe(c *client.Client, m *memberHealth) {
	var r readiness
	code, err := getJSON(c, m.Addr+"/readyz", &r)
	if err != nil {
		m.Detail = err.Error()
		return
	}
	m.Reachable, m.Ready, m.Session = true, code == http.StatusOK, r.ZooKeeper
	if r.Applied > 0 {
		m.Applied = r.Applied
	}
	if !m.Ready {
		m.Detail = r.Detail
	}
}

// getJSON GETs a member's url within probeTimeout.
func getJSON(c *client.Client, url string, out any) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	return c.GetJSON(ctx, url, out)
}

// compareHashes asks every reachable member for its digest at one index
// (GET /v1/digest?at=N): the highest any has applied, so the others get
// there; when the log moved past it meanwhile, a little further on.
func compareHashes(c *client.Client, members []memberHealth) hashCheck {
	var live []memberHealth
	var at uint64
	for _, m := range members {
		if m.Reachable {
			live = append(live, m)
			at = max(at, m.Applied)
		}
	}
	if len(live) < 2 || at == 0 {
		return hashCheck{Equal: true, Detail: "fewer than two members to compare"}
	}
	for margin := uint64(0); margin <= 64; margin = 2*margin + 8 {
		check, passed := digestsAt(c, live, at+margin)
		if !passed {
			return check
		}
	}
	return hashCheck{Equal: true, Detail: "not compared: the log moved too fast to meet at one index"}
}

// digestsAt compares the members' digests at index; passed says a member
// was beyond it already.
func digestsAt(c *client.Client, live []memberHealth, index uint64) (hashCheck, bool) {
	check := hashCheck{Index: index, Equal: true, Hashes: map[string]string{}}
	for _, m := range live {
		var d wire.Digest
		code, err := getJSON(c, fmt.Sprintf("%s/v1/digest?at=%d", m.Addr, index), &d)
		if code == http.StatusConflict {
			return check, true
		}
		if err != nil || code != http.StatusOK {
			why := fmt.Sprintf("HTTP %d", code)
			if err != nil {
				why = err.Error()
			}
			return hashCheck{Equal: true, Detail: fmt.Sprintf("not compared: %s did not answer for index %d (%s)", m.ID, index, why)}, false
		}
		check.Hashes[m.ID] = d.StateHash
	}
	var distinct []string
	for id, h := range check.Hashes {
		distinct = append(distinct, fmt.Sprintf("%s %.16s", id, h))
	}
	sort.Strings(distinct)
	first := check.Hashes[live[0].ID]
	for _, h := range check.Hashes {
		if h != first {
			check.Equal, check.Detail = false, strings.Join(distinct, ", ")
		}
	}
	return check, false
}

func (a *app) showHealth(h *health) error {
	if done, err := a.showJSON(h); done {
		return err
	}
	verdict := h.Verdict
	if len(h.Problems) > 0 {
		verdict += ": " + strings.Join(h.Problems, "; ")
	}
	fmt.Fprintln(a.stdout, verdict)
	if h.Members == nil {
		return nil
	}
	leader := "none"
	if h.Leader != nil {
		leader = fmt.Sprintf("%s (epoch %d)", h.Leader.ID, h.Leader.Epoch)
	}
	fmt.Fprintf(a.stdout, "leader: %s; log head %d, trimmed below %d; body version %d\n", leader, h.LogHead, h.TrimmedBelow, h.BodyVersion)
	fmt.Fprintf(a.stdout, "idempotency keys: %s\n", keysRemembered(h.Keys))
	fmt.Fprintf(a.stdout, "history: statements and the change feed from index %d on (%s on disk)\n\n", h.History.From, humanBytes(h.History.DiskBytes))
	var rows [][]string
	for _, m := range h.Members {
		rows = append(rows, []string{m.ID, m.Role, yesNo(m.Expected), yesNo(m.Live), yesNo(m.Ready), fmt.Sprint(m.Applied), fmt.Sprint(m.Lag), m.Session, m.Addr})
	}
	table(a.stdout, []string{"MEMBER", "ROLE", "EXPECTED", "LIVE", "READY", "APPLIED", "LAG", "ZOOKEEPER", "ADDRESS"}, rows)
	fmt.Fprintln(a.stdout)
	rows = nil
	for _, s := range h.ZooKeeper {
		rows = append(rows, []string{s.Addr, map[bool]string{true: s.Mode, false: "not serving"}[s.Mode != ""]})
	}
	table(a.stdout, []string{"ZOOKEEPER SERVER", "MODE"}, rows)
	hc := h.StateHashes
	switch {
	case hc.Index > 0 && hc.Equal:
		fmt.Fprintf(a.stdout, "\nstate hashes: equal at index %d on %d members\n", hc.Index, len(hc.Hashes))
	case hc.Index > 0:
		fmt.Fprintf(a.stdout, "\nstate hashes: DIFFER at index %d: %s\n", hc.Index, hc.Detail)
	default:
		fmt.Fprintf(a.stdout, "\nstate hashes: %s\n", hc.Detail)
	}
	return nil
}

func yesNo(b bool) string { return map[bool]string{true: "yes", false: "no"}[b] }

// keysRemembered says in words which keys the answering node remembers.
func keysRemembered(k wire.KeyMemory) string {
	bounds := fmt.Sprintf("the window holds %d keys of at most %d, for at most %d log entries", k.Held, k.WindowKeys, k.WindowEntries)
	inMemory := "none in memory yet; "
	if k.Held > 0 {
		inMemory = fmt.Sprintf("in memory every key first used after index %d", k.OldestIndex)
		if k.OldestTime != "" {
			inMemory += " (" + k.OldestTime + ")"
		}
		inMemory += "; "
	}
	if k.RetainMs == 0 {
		return inMemory + bounds
	}
	return fmt.Sprintf("remembered for %s of log time: every key first used at or after %s (since the switch at index %d; %s on disk), and %s",
		time.Duration(k.RetainMs)*time.Millisecond, k.ByTimeFrom, k.ByTimeSinceIndex, humanBytes(k.DiskBytes), inMemory+bounds)
}

// humanBytes is n in the largest unit that keeps it at 1 or more.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
