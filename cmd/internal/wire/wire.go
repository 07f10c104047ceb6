// Package wire holds the JSON shapes of the HTTP API (v1), shared by bankd,
// which serves them, and bankctl, which sends them. Amounts are integers in
// minor units; JSON numbers that are not plain non-negative integers are
// refused when decoding.
package wire

import (
	"fmt"
	"time"

	"github.com/zkbank/zkbank/engine"
)

// Headers of the API.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderIndex          = "X-Bank-Index"    // the log index a response reflects
	HeaderReplayed       = "X-Bank-Replayed" // "true" when a retry got the first outcome
	// HeaderTimeout is how long the client waits for this answer, in
	// milliseconds: the node then answers within it.
	HeaderTimeout  = "X-Bank-Timeout"
	ContentProblem = "application/problem+json"
	// ContentBackup is a backup file (docs/format.md, "Backup file"),
	// the answer to POST /v1/admin/backup with its index in HeaderIndex.
	ContentBackup = "application/vnd.zkbank.backup"
	// ContentNDJSON and ContentEventStream are the change feed's two
	// forms: a JSON object a line, or server-sent events.
	ContentNDJSON      = "application/x-ndjson"
	ContentEventStream = "text/event-stream"
)

// Account is one account as the API shows it.
type Account struct {
	Account      string `json:"account"`
	Name         string `json:"name"`
	Balance      uint64 `json:"balance"`
	CreatedIndex uint64 `json:"created_index"`
	UpdatedIndex uint64 `json:"updated_index"`
	Frozen       bool   `json:"frozen,omitempty"` // no money moves in or out
	// Held is what open holds from the account reserve of its balance;
	// Available the rest, what withdrawals, transfers and holds may use.
	Held      uint64 `json:"held"`
	Available uint64 `json:"available"`
}

// FromAccount converts the engine's account.
func FromAccount(a engine.Account) Account {
	return Account{Account: a.Number, Name: a.Name, Balance: a.Balance, CreatedIndex: a.CreatedIndex, UpdatedIndex: a.UpdatedIndex, Frozen: a.Frozen,
		Held: a.Held, Available: a.Available()}
}

// DefaultHoldExpiryMs is how long a hold holds when its create names no
// expiry: 7 days.
const DefaultHoldExpiryMs = 7 * 24 * 3600 * 1000

// CreateHold is the body of POST /v1/holds.
type CreateHold struct {
	From        string `json:"from"`
	To          string `json:"to"`
	Amount      uint64 `json:"amount"`
	ExpiresInMs uint64 `json:"expires_in_ms,omitempty"` // default DefaultHoldExpiryMs
}

// Hold is a hold as the API shows it. ExpiresMs is in the log's time
// (milliseconds since 1970); ClosedIndex is the entry that captured,
// voided or expired it.
type Hold struct {
	ID           uint64 `json:"id"`
	From         string `json:"from"`
	To           string `json:"to"`
	Amount       uint64 `json:"amount"`
	Captured     uint64 `json:"captured,omitempty"`
	Status       string `json:"status"`
	ExpiresMs    int64  `json:"expires_ms"`
	CreatedIndex uint64 `json:"created_index"`
	ClosedIndex  uint64 `json:"closed_index,omitempty"`
}

// FromHold converts the engine's hold.
func FromHold(h engine.Hold) Hold {
	return Hold{ID: h.ID, From: h.From, To: h.To, Amount: h.Amount, Captured: h.Captured, Status: h.Status.String(),
		ExpiresMs: h.ExpiresMs, CreatedIndex: h.CreatedIndex, ClosedIndex: h.ClosedIndex}
}

// HoldResult is the answer to a hold op: the hold afterwards and the
// accounts it moved (from; to on a capture, when the caller may read it).
type HoldResult struct {
	Hold Hold     `json:"hold"`
	From *Account `json:"from,omitempty"`
	To   *Account `json:"to,omitempty"`
}

// Approval is a command that waits for a second principal, as the API
// shows it. By and ClosedBy name principals for people ("ada (token 3,
// teller)"); Outcome is the command's, once approved.
type Approval struct {
	ID             uint64 `json:"id"`
	Op             string `json:"op"`
	Account        string `json:"account"`
	To             string `json:"to,omitempty"`
	Amount         uint64 `json:"amount"`
	By             string `json:"by"`
	Status         string `json:"status"`
	ExpiresMs      int64  `json:"expires_ms"`
	RequestedIndex uint64 `json:"requested_index"`
	ClosedIndex    uint64 `json:"closed_index,omitempty"`
	ClosedBy       string `json:"closed_by,omitempty"`
	Outcome        string `json:"outcome,omitempty"`
}

// FromApproval converts the engine's approval; name says who a principal
// is.
func FromApproval(a engine.Approval, name func(by string) string) Approval {
	out := Approval{ID: a.ID, Op: a.Op.String(), Account: a.Account, To: a.To, Amount: a.Amount, By: name(a.By), Status: a.Status.String(),
		ExpiresMs: a.ExpiresMs, RequestedIndex: a.RequestedIndex, ClosedIndex: a.ClosedIndex, ClosedBy: name(a.ClosedBy)}
	if a.Outcome.Valid() {
		out.Outcome = a.Outcome.String()
	}
	return out
}

// Pending is the answer (202) to a deposit, withdrawal or transfer above
// its principal's approval limit: not applied, waiting.
type Pending struct {
	Approval Approval `json:"approval"`
}

// ApprovalResult is the answer to an approve or reject: the approval
// afterwards and, once approved and applied, the accounts the command
// moved.
type ApprovalResult struct {
	Approval Approval  `json:"approval"`
	Accounts []Account `json:"accounts,omitempty"`
}

// ApprovalList is one page of GET /v1/approvals.
type ApprovalList struct {
	Approvals []Approval `json:"approvals"`
	Next      uint64     `json:"next,omitempty"`
}

// ApprovalLimit is a role's approval limit: the largest amount one of its
// principals moves alone (0: none). The body of POST
// /v1/admin/approval-limits.
type ApprovalLimit struct {
	Role  string `json:"role"`
	Limit uint64 `json:"limit"`
}

// ApprovalLimits is the answer to GET /v1/admin/approval-limits.
type ApprovalLimits struct {
	Limits []ApprovalLimit `json:"limits"`
}

// HoldList is one page of GET /v1/accounts/{account}/holds; Next is the
// value to pass as `after` for the next page, absent on the last one.
type HoldList struct {
	Holds []Hold `json:"holds"`
	Next  uint64 `json:"next,omitempty"`
}

// CreateAccount is the body of POST /v1/accounts.
type CreateAccount struct {
	Account string `json:"account,omitempty"`
	Name    string `json:"name"`
	Balance uint64 `json:"balance,omitempty"`
}

// Amount is the body of deposit and withdraw.
type Amount struct {
	Amount uint64 `json:"amount"`
}

// Transfer is the body of POST /v1/transfers.
type Transfer struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Amount uint64 `json:"amount"`
}

// Rename is the body of POST /v1/accounts/{account}/rename.
type Rename struct {
	Name string `json:"name"`
}

// TransferResult is the answer to a transfer: both accounts afterwards.
type TransferResult struct {
	From Account `json:"from"`
	To   Account `json:"to"`
}

// CustomerTransfer is a transfer's answer to a customer: its own account,
// and of the other only the number it gave.
type CustomerTransfer struct {
	From Account      `json:"from"`
	To   Counterparty `json:"to"`
}

// Counterparty is an account a caller may not see, by its number alone.
type Counterparty struct {
	Account string `json:"account"`
}

// AccountList is one page of GET /v1/accounts; Next is the value to pass
// as `after` for the next page, absent on the last one.
type AccountList struct {
	Accounts []Account `json:"accounts"`
	Next     string    `json:"next,omitempty"`
}

// Command is one command of a batch. Account is the account the command
// is about (the source of a transfer; "from" is accepted too).
type Command struct {
	Op      string `json:"op"`
	Key     string `json:"key,omitempty"`
	Account string `json:"account,omitempty"`
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	Name    string `json:"name,omitempty"`
	Amount  uint64 `json:"amount,omitempty"`
	Balance uint64 `json:"balance,omitempty"` // opening balance of create_account
	// Hold is the hold a capture_hold or void_hold acts on; ExpiresInMs
	// how long a create_hold holds (default DefaultHoldExpiryMs).
	Hold        uint64 `json:"hold,omitempty"`
	ExpiresInMs uint64 `json:"expires_in_ms,omitempty"`
	// Approval is the approval an approve or reject decides.
	Approval uint64 `json:"approval,omitempty"`
}

// ToEngine converts a batch command; it fails only on an unknown op or on
// fields that contradict each other. Field values are checked by the
// engine's Command.Check.
func (c Command) ToEngine() (engine.Command, error) {
	op, ok := engine.ParseOp(c.Op)
	if !ok {
		return engine.Command{}, fmt.Errorf("unknown op %q", c.Op)
	}
	if route, admin := adminOps[op]; admin {
		return engine.Command{}, fmt.Errorf("op %q is not a batch op: %s", c.Op, route)
	}
	if c.From != "" && c.Account != "" && c.From != c.Account {
		return engine.Command{}, fmt.Errorf("both account %q and from %q given", c.Account, c.From)
	}
	out := engine.Command{Op: op, Key: c.Key, Account: c.Account, To: c.To, Name: c.Name, Amount: c.Amount, Hold: c.Hold, ExpiresInMs: c.ExpiresInMs, Approval: c.Approval}
	if out.Account == "" {
		out.Account = c.From
	}
	if op == engine.OpCreateHold && out.ExpiresInMs == 0 {
		out.ExpiresInMs = DefaultHoldExpiryMs
	}
	if op == engine.OpCreateAccount {
		if c.Amount != 0 && c.Balance != 0 {
			return engine.Command{}, fmt.Errorf("create_account takes balance, not amount")
		}
		out.Amount = max(c.Amount, c.Balance)
	}
	return out, nil
}

// adminOps are the ops a batch does not take, with the route that does.
var adminOps = map[engine.Op]string{
	engine.OpRevokeCertificate: "POST /v1/admin/revocations",
	engine.OpCreateToken:       "POST /v1/admin/tokens",
	engine.OpRevokeToken:       "DELETE /v1/admin/tokens/{id}",
	engine.OpSetApprovalLimit:  "POST /v1/admin/approval-limits",
}

// FromEngine converts a command back into its batch form.
func FromEngine(c engine.Command) Command {
	out := Command{Op: c.Op.String(), Key: c.Key, Account: c.Account, To: c.To, Name: c.Name, Amount: c.Amount, Hold: c.Hold, ExpiresInMs: c.ExpiresInMs, Approval: c.Approval}
	if c.Op == engine.OpCreateAccount {
		out.Amount, out.Balance = 0, c.Amount
	}
	return out
}

// Batch is the body of POST /v1/batch.
type Batch struct {
	Commands []Command `json:"commands"`
}

// Result is one command's outcome.
type Result struct {
	Code     string    `json:"code"`
	Replayed bool      `json:"replayed,omitempty"`
	Accounts []Account `json:"accounts,omitempty"`
	Hold     *Hold     `json:"hold,omitempty"`     // of a hold op
	Approval *Approval `json:"approval,omitempty"` // asked for (approval_pending), or decided
}

// BatchResult is the answer to a batch: the index of the log entry that
// carried it and one result per command, in order.
type BatchResult struct {
	Index   uint64   `json:"index"`
	Results []Result `json:"results"`
}

// Digest summarises a node's state for comparison.
type Digest struct {
	Index        uint64 `json:"index"`
	StateHash    string `json:"state_hash"`
	Accounts     uint64 `json:"accounts"`
	TotalBalance uint64 `json:"total_balance"`
	TotalHeld    uint64 `json:"total_held,omitempty"` // of the balance, what open holds reserve
}

// Cluster is the answer to GET /v1/cluster.
type Cluster struct {
	Self         string   `json:"self"`
	Leader       *Leader  `json:"leader,omitempty"`
	Members      []Member `json:"members"`
	LogHead      uint64   `json:"log_head"`
	TrimmedBelow uint64   `json:"trimmed_below"`
	// BodyVersion is the log's body version as this node applied it, and
	// BodyVersionSince the index of its first entry.
	BodyVersion      uint32 `json:"body_version"`
	BodyVersionSince uint64 `json:"body_version_since"`
	// ZooKeeper is the answering node's view of the ensemble.
	ZooKeeper ZooKeeper `json:"zookeeper"`
	// Stale: the node could not read ZooKeeper; the members are its last
	// view and the log head what it applied.
	Stale bool `json:"stale,omitempty"`
	// Insecure: the node runs with --insecure (plain HTTP, nobody
	// authenticated).
	Insecure bool `json:"insecure,omitempty"`
	// Stalled: the answering node waits on the next log entry, which does
	// not verify (or decode); it never applies one.
	Stalled *Stalled `json:"stalled,omitempty"`
	// Keys is which idempotency keys the answering node remembers.
	Keys KeyMemory `json:"keys"`
	// History is where the answering node's statements and change feed
	// start, and what its history takes on disk.
	History HistorySpan `json:"history"`
}

// HistorySpan: the answering node's history holds every applied command
// from index From on.
type HistorySpan struct {
	From      uint64 `json:"from"`
	DiskBytes uint64 `json:"disk_bytes"`
}

// KeyMemory says which idempotency keys are remembered: every key first
// used after OldestIndex (at OldestTime, in the log's time, from body
// version 5), within the window's bounds, WindowEntries log entries and
// WindowKeys keys, whichever forgets first; and from body version 6,
// every key first used at or after ByTimeFrom, RetainMs of the log's
// time ago, once the log switched to version 6 at ByTimeSinceIndex. A key
// older than both is forgotten: its retry is applied as new.
type KeyMemory struct {
	OldestIndex      uint64 `json:"oldest_index"`
	OldestTime       string `json:"oldest_time,omitempty"`
	Held             int    `json:"held"`
	WindowEntries    uint64 `json:"window_entries"`
	WindowKeys       int    `json:"window_keys"`
	RetainMs         int64  `json:"retain_ms,omitempty"`
	ByTimeFrom       string `json:"by_time_from,omitempty"`
	ByTimeSinceIndex uint64 `json:"by_time_since_index,omitempty"`
	DiskBytes        uint64 `json:"disk_bytes"` // the node's key store
}

// Stalled is the log entry a node waits on, and why.
type Stalled struct {
	Index  uint64    `json:"index"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

// Revocation is a revoked certificate: the body of POST
// /v1/admin/revocations, and an item of the list (with the index it was
// revoked at).
type Revocation struct {
	Serial string `json:"serial"`
	Index  uint64 `json:"index,omitempty"`
}

// Revocations is the answer to GET /v1/admin/revocations.
type Revocations struct {
	Revocations []Revocation `json:"revocations"`
}

// MemberRemoval is the answer to DELETE /v1/admin/members/{id}: the
// certificates the member ran with, revoked at Index (0 when it ran
// without TLS), and its registry record gone.
type MemberRemoval struct {
	ID      string   `json:"id"`
	Revoked []string `json:"revoked"`
	Index   uint64   `json:"index,omitempty"`
}

// ZooKeeper is one node's view of the ZooKeeper ensemble.
type ZooKeeper struct {
	Session   string            `json:"session"`             // the node's session state
	Connected string            `json:"connected,omitempty"` // the server it talks to
	Servers   []ZooKeeperServer `json:"servers"`
}

// ZooKeeperServer is what one server says of itself: leader, follower,
// standalone, or "" when it does not answer.
type ZooKeeperServer struct {
	Addr string `json:"addr"`
	Mode string `json:"mode"`
}

// Leader names the current leader.
type Leader struct {
	ID    string `json:"id"`
	Addr  string `json:"addr"`
	Epoch uint64 `json:"epoch"`
}

// Member is one node: expected (in the registry), live (in ZooKeeper's
// members), or both, and its progress when live.
type Member struct {
	ID       string `json:"id"`
	Addr     string `json:"addr"`
	Role     string `json:"role"` // leader, follower or down
	Expected bool   `json:"expected"`
	Live     bool   `json:"live"`
	Reads    uint32 `json:"reads,omitempty"` // the newest body version its binary reads
	Applied  uint64 `json:"applied"`
	Snapshot uint64 `json:"snapshot"`
}

// ReadIndex is the leader's answer to a linearizable read's quorum round.
type ReadIndex struct {
	Index uint64 `json:"index"`
}

// TokenRequest is the body of POST /v1/admin/tokens. Without
// SecretSHA256 the node makes the secret and answers it once; with it
// (the hex SHA-256 of a secret the client made, as bankctl does), the
// secret never travels and a retry with the same Idempotency-Key is a
// replay.
type TokenRequest struct {
	Name         string   `json:"name"`
	Role         string   `json:"role"`
	Accounts     []string `json:"accounts,omitempty"`
	ExpiresIn    string   `json:"expires_in,omitempty"` // a Go duration: "720h"
	SecretSHA256 string   `json:"secret_sha256,omitempty"`
}

// Token is a token as the API shows it: never its hash; its secret only
// in the answer that created it, when the node made it.
type Token struct {
	ID           uint64   `json:"id"`
	Name         string   `json:"name"`
	Role         string   `json:"role"`
	Accounts     []string `json:"accounts,omitempty"`
	ExpiresAt    string   `json:"expires_at,omitempty"` // RFC 3339, by the log's time
	CreatedIndex uint64   `json:"created_index"`
	RevokedIndex uint64   `json:"revoked_index,omitempty"`
	Token        string   `json:"token,omitempty"`
}

// Tokens is the answer to GET /v1/admin/tokens.
type Tokens struct {
	Tokens []Token `json:"tokens"`
}

// FromToken converts the engine's token.
func FromToken(t engine.Token) Token {
	out := Token{ID: t.ID, Name: t.Name, Role: t.Role.String(), Accounts: t.Accounts, CreatedIndex: t.CreatedIndex, RevokedIndex: t.RevokedIndex}
	if t.ExpiresMs != 0 {
		out.ExpiresAt = TimeOf(t.ExpiresMs)
	}
	return out
}
