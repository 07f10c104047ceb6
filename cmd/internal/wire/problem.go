package wire

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/zkbank/zkbank/engine"
)

// Problem is an RFC 9457 problem detail with a stable Code. Retryable says
// that sending the same request again (with the same Idempotency-Key) may
// succeed.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Detail    string `json:"detail,omitempty"`
	Retryable bool   `json:"retryable,omitempty"`
	// HistoryFrom, for CodeHistoryGone, is the first index the node's
	// history holds.
	HistoryFrom uint64 `json:"history_from,omitempty"`
}

func (p *Problem) Error() string {
	if p.Detail != "" {
		return fmt.Sprintf("%s: %s", p.Code, p.Detail)
	}
	return p.Code
}

// Problem codes of the API itself; engine outcome codes (account_exists,
// insufficient_funds, ...) are used as they are.
const (
	CodeInvalidJSON      = "invalid_json"      // not JSON, or trailing data
	CodeUnknownField     = "unknown_field"     // a field the endpoint does not take
	CodeInvalidField     = "invalid_field"     // a field of the wrong type
	CodeInvalidOp        = "invalid_op"        // a batch command with an unknown op
	CodeInvalidParameter = "invalid_parameter" // a bad query parameter
	CodeBodyTooLarge     = "body_too_large"
	CodeBatchTooLarge    = "batch_too_large"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeNotFound         = "not_found" // no such route
	CodeMethodNotAllowed = "method_not_allowed"
	CodeNoLeader         = "no_leader"
	CodeNotLeader        = "not_leader" // internal: the peer asked is not the leader
	CodeOverloaded       = "overloaded"
	CodeTimeout          = "timeout"      // min_index not reached in time
	CodeIndexPassed      = "index_passed" // a digest asked for at an index the node is past
	CodeOutcomeUnknown   = "outcome_unknown"
	CodeNotReady         = "not_ready"
	CodeUnauthenticated  = "unauthenticated"  // no credential, or one the bank does not take
	CodeForbidden        = "forbidden"        // a known caller that may not do this
	CodeMemberNotFound   = "member_not_found" // no such member in the registry
	CodeMemberLive       = "member_live"      // a member to remove is still running
	CodeRateLimited      = "rate_limited"     // a principal sent more than its share
	CodeNoBackup         = "no_backup"        // this node cannot write a backup (an unsealed log, nothing applied)
	CodeHistoryGone      = "history_gone"     // a cursor older than what the node's history holds
	CodeTooSlow          = "too_slow"         // a feed's consumer fell behind (the feed's last line)
	CodeStopping         = "stopping"         // the node is shutting down (the feed's last line)
	CodeInternal         = "internal"
)

var apiStatus = map[string]int{
	CodeInvalidJSON: 400, CodeUnknownField: 400, CodeInvalidField: 400, CodeInvalidOp: 400,
	CodeInvalidParameter: 400, CodeBodyTooLarge: 413, CodeBatchTooLarge: 413, CodeUnsupportedMedia: 415,
	CodeNotFound: 404, CodeMethodNotAllowed: 405, CodeNoLeader: 503, CodeNotLeader: 503,
	CodeOverloaded: 503, CodeTimeout: 504, CodeIndexPassed: 409, CodeOutcomeUnknown: 503, CodeNotReady: 503, CodeInternal: 500,
	CodeUnauthenticated: 401, CodeForbidden: 403, CodeMemberNotFound: 404, CodeMemberLive: 409, CodeRateLimited: 429,
	CodeNoBackup: 409, CodeHistoryGone: 410,
}

var retryable = map[string]bool{
	CodeNoLeader: true, CodeNotLeader: true, CodeOverloaded: true, CodeTimeout: true,
	CodeOutcomeUnknown: true, CodeNotReady: true, CodeRateLimited: true,
}

// StatusOf is the HTTP status of an API code or an engine outcome.
func StatusOf(code string) int {
	if s, ok := apiStatus[code]; ok {
		return s
	}
	c, _ := engine.ParseCode(code)
	switch c {
	case engine.CodeOK:
		return http.StatusOK
	case engine.CodeApprovalPending:
		return http.StatusAccepted
	case engine.CodeOwnApproval:
		return http.StatusForbidden
	case engine.CodeAccountNotFound, engine.CodeTokenNotFound, engine.CodeHoldNotFound, engine.CodeApprovalNotFound:
		return http.StatusNotFound
	case engine.CodeAccountExists, engine.CodeInsufficientFunds, engine.CodeBalanceNotZero,
		engine.CodeLimitExceeded, engine.CodeIdempotencyKeyReused, engine.CodeAccountFrozen,
		engine.CodeHoldClosed, engine.CodeHoldExpired, engine.CodeCaptureExceedsHold, engine.CodeApprovalClosed, engine.CodeApprovalExpired:
		return http.StatusConflict
	case engine.CodeInvalidAmount, engine.CodeInvalidName, engine.CodeSameAccount,
		engine.CodeInvalidAccount, engine.CodeInvalidKey, engine.CodeInvalidSerial, engine.CodeInvalidToken,
		engine.CodeInvalidHold, engine.CodeInvalidApproval:
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// NewProblem builds the problem for code with a human detail.
func NewProblem(code, detail string) *Problem {
	status := StatusOf(code)
	return &Problem{
		Type: "urn:zkbank:problem:" + code, Title: http.StatusText(status),
		Status: status, Code: code, Detail: detail, Retryable: retryable[code],
	}
}

// WriteProblem answers with p as application/problem+json; a retryable
// problem says when to retry.
func WriteProblem(w http.ResponseWriter, p *Problem) {
	w.Header().Set("Content-Type", ContentProblem)
	if p.Retryable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p) // the client may be gone; nothing to do about it
}
