package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"

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
		return wire.TransferResult{From: wire.FromAccount(accts[0]), To: wire.FromAccount(accts[1])}
	})
}

func firstAccount(accts []engine.Account) any { return wire.FromAccount(accts[0]) }

// writeOne checks cmd, runs it through the log and answers with render's
// view of the accounts on success, or the rejection as a problem.
func (s *Server) writeOne(w http.ResponseWriter, r *http.Request, cmd engine.Command, okStatus int, render func([]engine.Account) any) {
	key, p := requestKey(r)
	if p != nil {
		writeProblem(w, p)
		return
	}
	cmd.Key = key
	if code := cmd.Check(); code != engine.CodeOK {
		writeProblem(w, wire.NewProblem(code.String(), wire.Describe(cmd, code)))
		return
	}
	res, err := s.submit(r, []engine.Command{cmd})
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	setIndex(w, res.index)
	w.Header().Set(wire.HeaderIdempotencyKey, key)
	out := res.outcomes[0]
	if out.Replayed {
		w.Header().Set(wire.HeaderReplayed, "true")
	}
	if out.Code != engine.CodeOK {
		writeProblem(w, wire.NewProblem(out.Code.String(), wire.Describe(cmd, out.Code)))
		return
	}
	writeJSON(w, okStatus, render(out.Accounts))
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
	res, err := s.submit(r, cmds)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	setIndex(w, res.index)
	writeJSON(w, http.StatusOK, toBatchResult(res))
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
		if code := c.Check(); code != engine.CodeOK {
			return nil, wire.NewProblem(code.String(), fmt.Sprintf("command %d: %s", i, wire.Describe(c, code)))
		}
		cmds[i] = c
	}
	return cmds, nil
}

func toBatchResult(res submitted) wire.BatchResult {
	out := wire.BatchResult{Index: res.index, Results: make([]wire.Result, len(res.outcomes))}
	for i, o := range res.outcomes {
		wr := wire.Result{Code: o.Code.String(), Replayed: o.Replayed}
		for _, a := range o.Accounts {
			wr.Accounts = append(wr.Accounts, wire.FromAccount(a))
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
	s.writeOne(w, r, cmd, http.StatusOK, func([]engine.Account) any { return wire.Revocation{Serial: body.Serial} })
}

// removeMember removes a stopped member for good: its certificates are
// revoked through the log, then its registry record is deleted (admin
// only: the guard). Retrying after a failure is safe.
func (s *Server) removeMember(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), waitFor(r, s.cfg.WriteTimeout))
	defer cancel()
	rm, err := s.node.RemoveMember(ctx, r.PathValue("id"))
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	if rm.Index > 0 {
		setIndex(w, rm.Index)
	}
	writeJSON(w, http.StatusOK, wire.MemberRemoval{ID: rm.ID, Revoked: rm.Revoked, Index: rm.Index})
}
