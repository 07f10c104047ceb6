package api

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/zkcoord"
)

// consistent waits until this node's state may answer the read: at or past
// min_index, and, for consistency=linearizable, past every write
// acknowledged before the read began (an index confirmed by the leader).
func (s *Server) consistent(r *http.Request) *wire.Problem {
	q := r.URL.Query()
	var minIndex uint64
	if v := q.Get("min_index"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return wire.NewProblem(wire.CodeInvalidParameter, fmt.Sprintf("min_index %q is not an index", v))
		}
		minIndex = n
	}
	switch c := q.Get("consistency"); c {
	case "", "local":
	case "linearizable":
		ctx, cancel := contextFor(r, s.cfg.WriteTimeout)
		index, err := s.node.LinearizableIndex(ctx)
		cancel()
		if err != nil {
			return problemFor(err)
		}
		minIndex = max(minIndex, index)
	default:
		return wire.NewProblem(wire.CodeInvalidParameter, fmt.Sprintf("consistency %q: use local or linearizable", c))
	}
	if minIndex == 0 {
		return nil
	}
	ctx, cancel := contextFor(r, s.cfg.ReadTimeout)
	defer cancel()
	if err := s.node.WaitApplied(ctx, minIndex); err != nil {
		return wire.NewProblem(wire.CodeTimeout, err.Error())
	}
	return nil
}

// readable is the request's {account}, when it is a number the caller may
// read; otherwise it answers the problem and returns false.
func (s *Server) readable(w http.ResponseWriter, r *http.Request) (string, bool) {
	number := r.PathValue("account")
	if !engine.ValidAccountNumber(number) {
		writeProblem(w, wire.NewProblem(engine.CodeInvalidAccount.String(), wire.Describe(engine.Command{}, engine.CodeInvalidAccount)))
		return "", false
	}
	if c := callerOf(r); !c.mayRead(number) { // forbidden whether it exists or not: no oracle
		s.refused(w, r, c, wire.NewProblem(wire.CodeForbidden, fmt.Sprintf("%s (customer) may read only its own accounts", c.name)))
		return "", false
	}
	return number, true
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) {
	number, ok := s.readable(w, r)
	if !ok {
		return
	}
	if p := s.consistent(r); p != nil {
		writeProblem(w, p)
		return
	}
	a, ok, index := s.node.Get(number)
	setIndex(w, index)
	if !ok {
		writeProblem(w, wire.NewProblem(engine.CodeAccountNotFound.String(), fmt.Sprintf("no account %q", number)))
		return
	}
	writeJSON(w, http.StatusOK, wire.FromAccount(a))
}

func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after := q.Get("after")
	if after != "" && !engine.ValidAccountNumber(after) {
		writeProblem(w, wire.NewProblem(wire.CodeInvalidParameter, fmt.Sprintf("after %q is not an account number", after)))
		return
	}
	limit, p := s.page(r, nil)
	if p != nil {
		writeProblem(w, p)
		return
	}
	accts, index := s.list(callerOf(r), after, limit)
	out := wire.AccountList{Accounts: make([]wire.Account, len(accts))}
	for i, a := range accts {
		out.Accounts[i] = wire.FromAccount(a)
	}
	if len(accts) == limit {
		out.Next = accts[len(accts)-1].Number
	}
	setIndex(w, index)
	writeJSON(w, http.StatusOK, out)
}

// page reads a list page's limit, once the page's other parameters were
// read (their first problem, if any, comes first), and waits until the
// node may answer (consistent).
func (s *Server) page(r *http.Request, before *wire.Problem) (int, *wire.Problem) {
	if before != nil {
		return 0, before
	}
	limit, p := s.listLimit(r.URL.Query().Get("limit"))
	if p == nil {
		p = s.consistent(r)
	}
	return limit, p
}

// listLimit reads a list's limit parameter: 100 when it is left out.
func (s *Server) listLimit(v string) (int, *wire.Problem) {
	if v == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > s.cfg.ListLimitMax {
		return 0, wire.NewProblem(wire.CodeInvalidParameter, fmt.Sprintf("limit %q: use 1 to %d", v, s.cfg.ListLimitMax))
	}
	return n, nil
}

// list is a page of the accounts c may read: all of them, or a
// customer's own.
func (s *Server) list(c *caller, after string, limit int) ([]engine.Account, uint64) {
	if c.role != engine.RoleCustomer {
		return s.node.List(after, limit)
	}
	var out []engine.Account
	index := s.node.Applied()
	for _, number := range c.accounts {
		if number <= after || len(out) == limit {
			continue
		}
		if a, ok, at := s.node.Get(number); ok {
			out, index = append(out, a), at
		}
	}
	return out, index
}

func (s *Server) digest(w http.ResponseWriter, r *http.Request) {
	if v := r.URL.Query().Get("at"); v != "" {
		s.digestAt(w, r, v)
		return
	}
	if p := s.consistent(r); p != nil {
		writeProblem(w, p)
		return
	}
	d := s.node.Digest()
	setIndex(w, d.Index)
	writeJSON(w, http.StatusOK, digestOf(d))
}

func (s *Server) cluster(w http.ResponseWriter, r *http.Request) {
	v := s.node.View()
	st := s.node.Status()
	out := wire.Cluster{Self: s.node.ID(), LogHead: v.Head, TrimmedBelow: v.TrimmedBelow, BodyVersion: st.BodyVersion,
		BodyVersionSince: st.VersionSince, Stale: v.Stale, Insecure: s.cfg.Insecure}
	if st.Stalled != nil {
		out.Stalled = &wire.Stalled{Index: st.Stalled.Index, Reason: st.Stalled.Reason, Since: st.Stalled.Since}
	}
	k := st.Keys
	out.Keys = wire.KeyMemory{OldestIndex: k.OldestIndex, Held: k.Held, WindowEntries: k.WindowEntries, WindowKeys: k.WindowMax,
		RetainMs: k.RetainMs, ByTimeSinceIndex: k.ByTimeSinceIndex, DiskBytes: st.KeyDiskBytes}
	out.History = wire.HistorySpan{From: st.HistoryFrom, DiskBytes: st.HistoryDiskBytes}
	if k.OldestTimeMs > 0 {
		out.Keys.OldestTime = wire.TimeOf(k.OldestTimeMs)
	}
	if k.RetainMs > 0 {
		out.Keys.ByTimeFrom = wire.TimeOf(k.ByTimeFromMs)
	}
	leader, ok := s.node.Leader()
	if ok {
		out.Leader = &wire.Leader{ID: leader.ID, Addr: leader.Addr, Epoch: leader.Epoch}
	}
	out.Members = clusterMembers(v.Live, v.Expected, leader.ID)
	session, connected, servers := s.node.ZooKeeper()
	out.ZooKeeper = wire.ZooKeeper{Session: session, Connected: connected, Servers: make([]wire.ZooKeeperServer, len(servers))}
	for i, srv := range servers {
		out.ZooKeeper.Servers[i] = wire.ZooKeeperServer{Addr: srv.Addr, Mode: srv.Mode}
	}
	writeJSON(w, http.StatusOK, out)
}

// clusterMembers lists every node expected or live, by id.
func clusterMembers(live []zkcoord.MemberRecord, expected []zkcoord.RegistryRecord, leader string) []wire.Member {
	byID := map[string]*wire.Member{}
	var ids []string
	get := func(id, addr string) *wire.Member {
		if m, ok := byID[id]; ok {
			return m
		}
		byID[id] = &wire.Member{ID: id, Addr: addr, Role: "down"}
		ids = append(ids, id)
		return byID[id]
	}
	for _, r := range expected {
		m := get(r.ID, r.Addr)
		m.Expected, m.Reads = true, r.Reads
	}
	for _, l := range live {
		m := get(l.ID, l.Addr)
		m.Live, m.Addr, m.Applied, m.Snapshot, m.Role = true, l.Addr, l.Applied, l.Snapshot, "follower"
		if l.ID == leader {
			m.Role = "leader"
		}
	}
	sort.Strings(ids)
	out := make([]wire.Member, len(ids))
	for i, id := range ids {
		out[i] = *byID[id]
	}
	return out
}

func (s *Server) livez(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.node.Done():
		writeProblem(w, wire.NewProblem(wire.CodeNotReady, fmt.Sprintf("the node stopped: %v", s.node.Err())))
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	st := s.node.Status()
	if !st.Ready {
		writeProblem(w, wire.NewProblem(wire.CodeNotReady, fmt.Sprintf("catching up (applied %d) or shutting down", st.Applied)))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "applied": st.Applied, "zookeeper": st.Session})
}

// digestAt answers GET /v1/digest?at=N: the digest at exactly index N,
// waiting (within the read timeout) for this node to get there, so that
// nodes can be compared while the log moves.
func (s *Server) digestAt(w http.ResponseWriter, r *http.Request, v string) {
	index, err := strconv.ParseUint(v, 10, 64)
	if err != nil || index == 0 {
		writeProblem(w, wire.NewProblem(wire.CodeInvalidParameter, fmt.Sprintf("at %q is not an index", v)))
		return
	}
	ctx, cancel := contextFor(r, s.cfg.ReadTimeout)
	defer cancel()
	d, err := s.node.DigestAt(ctx, index)
	switch {
	case errors.Is(err, node.ErrIndexPassed):
		writeProblem(w, wire.NewProblem(wire.CodeIndexPassed, err.Error()))
		return
	case err != nil:
		writeProblem(w, wire.NewProblem(wire.CodeTimeout, err.Error()))
		return
	}
	setIndex(w, d.Index)
	writeJSON(w, http.StatusOK, digestOf(d))
}

// revocations lists the revoked certificates, with the index each was
// revoked at.
func (s *Server) revocations(w http.ResponseWriter, r *http.Request) {
	list := s.node.Revocations()
	out := wire.Revocations{Revocations: make([]wire.Revocation, len(list))}
	for i, rv := range list {
		out.Revocations[i] = wire.Revocation{Serial: rv.Serial, Index: rv.Index}
	}
	writeJSON(w, http.StatusOK, out)
}

// digestOf is a digest as the API shows it.
func digestOf(d node.Digest) wire.Digest {
	return wire.Digest{Index: d.Index, StateHash: d.StateHash.String(), Accounts: d.Totals.Accounts, TotalBalance: d.Totals.Balance, TotalHeld: d.Totals.Held}
}
