package api

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"

	"github.com/zkbank/zkbank/cmd/bankd/internal/node"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
)

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request) {
	var body wire.CreateAccount
	if !s.decodeBody(w, r, &body) {
		return
	}
	cmd := engine.Command{Op: engine.OpCreateAccount, Account: body.Account, Name: body.Name, Amount: body.Balance}
	s.writeOne(w, r, cmd, http.StatusCreated, firstAccount)
}

func (s *Server) deposit(w http.ResponseWriter, r *http.Request) {
	s.amountCommand(w, r, engine.OpDeposit)
}

func (s *Server) withdraw(w http.ResponseWriter, r *http.Request) {
	s.amountCommand(w, r, engine.OpWithdraw)
}

func (s *Server) amountCommand(w http.ResponseWriter, r *http.Request, op engine.Op) {
	var body wire.Amount
	if !s.decodeBody(w, r, &body) {
		return
	}
	cmd := engine.Command{Op: op, Account: r.PathValue("account"), Amount: body.Amount}
	s.writeOne(w, r, cmd, http.StatusOK, firstAccount)
}

func (s *Server) rename(w http.ResponseWriter, r *http.Request) {
	var body wire.Rename
	if !s.decodeBody(w, r, &body) {
		return
	}
	cmd := engine.Command{Op: engine.OpRename, Account: r.PathValue("account"), Name: body.Name}
	s.writeOne(w, r, cmd, http.StatusOK, firstAccount)
}

func (s *Server) freeze(w http.ResponseWriter, r *http.Request) {
	cmd := engine.Command{Op: engine.OpFreezeAccount, Account: r.PathValue("account")}
	s.writeOne(w, r, cmd, http.StatusOK, firstAccount)
}

func (s *Server) unfreeze(w http.ResponseWriter, r *http.Request) {
	cmd := engine.Command{Op: engine.OpUnfreezeAccount, Account: r.PathValue("account")}
	s.writeOne(w, r, cmd, http.StatusOK, firstAccount)
}

func (s *Server) deleteAccount(w http.ResponseWriter, r *http.Request) {
	cmd := engine.Command{Op: engine.OpDeleteAccount, Account: r.PathValue("account")}
	s.writeOne(w, r, cmd, http.StatusOK, firstAccount)
}

func (s *Server) transfer(w http.ResponseWriter, r *http.Request) {
	var body wire.Transfer
	if !s.decodeBody(w, r, &body) {
		return
	}
	cmd := engine.Command{Op: engine.OpTransfer, Account: body.From, To: body.To, Amount: body.Amount}
	s.writeOne(w, r, cmd, http.StatusOK, func(accts []engine.Account) any {
		if callerOf(r).role == engine.RoleCustomer { // its own account; of the other, the number it gave
			return wire.CustomerTransfer{From: wire.FromAccount(accts[0]), To: wire.Counterparty{Account: accts[1].Number}}
		}
		return wire.TransferResult{From: wire.FromAccount(accts[0]), To: wire.FromAccount(accts[1])}
	})
}

func firstAccount(accts []engine.Account) any { return wire.FromAccount(accts[0]) }

// writeOne runs cmd (runOne) and answers with render's view of the
// accounts on success.
func (s *Server) writeOne(w http.ResponseWriter, r *http.Request, cmd engine.Command, okStatus int, render func([]engine.Account) any) {
	if out, _, ok := s.runOne(w, r, cmd); ok {
		writeJSON(w, okStatus, render(out.Accounts))
	}
}

// runOne gives cmd the request's key and the caller's principal, checks
// it (its fields, then the caller's right to it, against this node's
// state), runs it through the log and returns its outcome; on any
// refusal or rejection it has answered with the problem, and ok is false.
func (s *Server) runOne(w http.ResponseWriter, r *http.Request, cmd engine.Command) (out node.Outcome, index uint64, ok bool) {
	key, p := requestKey(r)
	if p != nil {
		writeProblem(w, p)
		return out, 0, false
	}
	cmd.Key, cmd.Principal = key, callerOf(r).principal
	if code := cmd.Check(); code != engine.CodeOK {
		writeProblem(w, wire.NewProblem(code.String(), wire.Describe(cmd, code)))
		return out, 0, false
	}
	if code := s.node.Authorize(&cmd); code != engine.CodeOK {
		s.refused(w, r, callerOf(r), s.authProblem(r, &cmd, code))
		return out, 0, false
	}
	res, err := s.submit(r, []engine.Command{cmd})
	if err != nil {
		writeProblem(w, problemFor(err))
		return out, 0, false
	}
	setIndex(w, res.index)
	w.Header().Set(wire.HeaderIdempotencyKey, key)
	out = res.outcomes[0]
	if out.Replayed {
		w.Header().Set(wire.HeaderReplayed, "true")
	}
	if out.Code == engine.CodeApprovalPending { // not applied: waiting for a second principal
		p := wire.Pending{Approval: wire.Approval{Status: "forgotten"}} // a retry long after it closed
		if out.Approval != nil {
			p.Approval = wire.FromApproval(*out.Approval, s.node.PrincipalName)
		}
		writeJSON(w, http.StatusAccepted, p)
		return out, res.index, false
	}
	if out.Code != engine.CodeOK {
		if out.Code == engine.CodeUnauthenticated || out.Code == engine.CodeForbidden {
			s.refused(w, r, callerOf(r), s.authProblem(r, &cmd, out.Code)) // revoked while it waited
			return out, res.index, false
		}
		writeProblem(w, wire.NewProblem(out.Code.String(), wire.Describe(cmd, out.Code)))
		return out, res.index, false
	}
	return out, res.index, true
}

// authProblem says why the caller may not run cmd.
func (s *Server) authProblem(r *http.Request, cmd *engine.Command, code engine.Code) *wire.Problem {
	c := callerOf(r)
	if code == engine.CodeUnauthenticated {
		return unauthenticated(fmt.Sprintf("%s's credential is revoked or expired", c.name))
	}
	what := cmd.Op.String()
	if cmd.Account != "" {
		what += " on account " + strconv.Quote(cmd.Account)
	}
	if cmd.Hold != 0 {
		what += " on hold " + strconv.FormatUint(cmd.Hold, 10)
	}
	if cmd.Approval != 0 {
		what += " on approval " + strconv.FormatUint(cmd.Approval, 10)
	}
	return wire.NewProblem(wire.CodeForbidden, fmt.Sprintf("%s (%s) may not %s", c.name, c.role, what))
}

func (s *Server) batch(w http.ResponseWriter, r *http.Request) {
	var body wire.Batch
	if !s.decodeBody(w, r, &body) {
		return
	}
	cmds, p := s.batchCommands(r, body.Commands)
	if p != nil {
		writeProblem(w, p)
		return
	}
	for i := range cmds {
		if code := s.node.Authorize(&cmds[i]); code != engine.CodeOK {
			p := s.authProblem(r, &cmds[i], code)
			p.Detail = fmt.Sprintf("command %d: %s; nothing in the batch was sent", i, p.Detail)
			s.refused(w, r, callerOf(r), p)
			return
		}
	}
	res, err := s.submit(r, cmds)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	setIndex(w, res.index)
	writeJSON(w, http.StatusOK, toBatchResult(res, callerOf(r), s.node.PrincipalName))
}

// batchCommands converts and checks every command before any is sent: a
// batch with one malformed command is refused whole, naming it.
func (s *Server) batchCommands(r *http.Request, in []wire.Command) ([]engine.Command, *wire.Problem) {
	if len(in) == 0 {
		return nil, wire.NewProblem(wire.CodeInvalidField, "commands is empty")
	}
	if len(in) > s.cfg.BatchMax {
		return nil, wire.NewProblem(wire.CodeBatchTooLarge, fmt.Sprintf("%d commands; at most %d per batch", len(in), s.cfg.BatchMax))
	}
	base, p := requestKey(r)
	if p != nil {
		return nil, p
	}
	cmds := make([]engine.Command, len(in))
	for i, wc := range in {
		c, err := wc.ToEngine()
		if err != nil {
			return nil, wire.NewProblem(wire.CodeInvalidOp, fmt.Sprintf("command %d: %v", i, err))
		}
		if c.Key == "" {
			c.Key = deriveKey(base, i)
		}
		c.Principal = callerOf(r).principal
		if code := c.Check(); code != engine.CodeOK {
			return nil, wire.NewProblem(code.String(), fmt.Sprintf("command %d: %s", i, wire.Describe(c, code)))
		}
		cmds[i] = c
	}
	return cmds, nil
}

// toBatchResult is the answer to a batch; a customer sees only its own
// accounts in it.
func toBatchResult(res submitted, c *caller, name func(by string) string) wire.BatchResult {
	out := wire.BatchResult{Index: res.index, Results: make([]wire.Result, len(res.outcomes))}
	for i, o := range res.outcomes {
		wr := wire.Result{Code: o.Code.String(), Replayed: o.Replayed}
		if o.Hold != nil {
			h := wire.FromHold(*o.Hold)
			wr.Hold = &h
		}
		if o.Approval != nil {
			a := wire.FromApproval(*o.Approval, name)
			wr.Approval = &a
		}
		for _, a := range o.Accounts {
			if c.mayRead(a.Number) {
				wr.Accounts = append(wr.Accounts, wire.FromAccount(a))
			}
		}
		out.Results[i] = wr
	}
	return out
}

// requestKey is the request's Idempotency-Key, or a fresh random one.
func requestKey(r *http.Request) (string, *wire.Problem) {
	key := r.Header.Get(wire.HeaderIdempotencyKey)
	if key == "" {
		var b [18]byte
		rand.Read(b[:])
		return "auto-" + base64.RawURLEncoding.EncodeToString(b[:]), nil
	}
	if !engine.ValidKey(key) {
		return "", wire.NewProblem(engine.CodeInvalidKey.String(), "Idempotency-Key must be 1 to 64 bytes")
	}
	return key, nil
}

// deriveKey gives command i of a batch its own key from the request's.
func deriveKey(base string, i int) string {
	k := base + "/" + strconv.Itoa(i)
	if len(k) > 64 {
		sum := sha256.Sum256([]byte(k))
		k = "d-" + hex.EncodeToString(sum[:24])
	}
	return k
}

// revoke revokes a certificate through the log: from the index it is
// applied at, every node refuses it (admin only: the guard).
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	var body wire.Revocation
	if !s.decodeBody(w, r, &body) {
		return
	}
	cmd := engine.Command{Op: engine.OpRevokeCertificate, Serial: body.Serial}
	if _, index, ok := s.runOne(w, r, cmd); ok {
		s.events.admin(r, "revoke_certificate", "serial", body.Serial, "index", index)
		writeJSON(w, http.StatusOK, wire.Revocation{Serial: body.Serial, Index: index})
	}
}

// removeMember removes a stopped member for good: its certificates are
// revoked through the log, then its registry record is deleted (admin
// only: the guard). Retrying after a failure is safe.
func (s *Server) removeMember(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := contextFor(r, s.cfg.WriteTimeout)
	defer cancel()
	rm, err := s.node.RemoveMember(ctx, r.PathValue("id"), callerOf(r).principal)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	s.events.admin(r, "remove_member", "member", rm.ID, "revoked", rm.Revoked, "index", rm.Index)
	if rm.Index > 0 {
		setIndex(w, rm.Index)
	}
	writeJSON(w, http.StatusOK, wire.MemberRemoval{ID: rm.ID, Revoked: rm.Revoked, Index: rm.Index})
}

// backup answers a backup file of a snapshot taken now. A failure after
// the first byte cuts the file short, which its reader finds (the last
// chunk is missing): nothing more can be said to the client then.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := contextFor(r, s.cfg.WriteTimeout)
	b, err := s.node.Backup(ctx)
	cancel()
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	defer b.Close()
	s.events.admin(r, "backup", "index", b.Info.Index, "bytes", b.Info.Size)
	setIndex(w, b.Info.Index)
	w.Header().Set("Content-Type", wire.ContentBackup)
	w.Header().Set("Content-Length", strconv.FormatInt(b.Size(), 10)) // the client's progress, and a cut it sees
	w.WriteHeader(http.StatusOK)
	_, _ = b.WriteTo(w)
}
