package wire

import (
	"time"

	"github.com/zkbank/zkbank/history"
)

// StatementLine is one command that touched an account, as its statement
// shows it: Direction is "in" or "out" for money (that moved, or would
// have for a refused command), Counterparty the other account of a
// transfer, Balance and Held the account's right after the command (as
// it was, when the command was refused).
type StatementLine struct {
	Cursor       string `json:"cursor"` // "INDEX.POSITION": pass it as after to go on
	Index        uint64 `json:"index"`
	Position     uint32 `json:"position"` // of the command in its entry, from 0
	Time         string `json:"time"`
	Op           string `json:"op"`
	Applied      string `json:"applied,omitempty"` // an approve's command
	Direction    string `json:"direction,omitempty"`
	Amount       uint64 `json:"amount,omitempty"`
	Counterparty string `json:"counterparty,omitempty"`
	Code         string `json:"code"`
	Balance      uint64 `json:"balance"`
	Held         uint64 `json:"held"`
	Hold         uint64 `json:"hold,omitempty"`
	Approval     uint64 `json:"approval,omitempty"`
	By           string `json:"by,omitempty"` // who sent it (a token's name, a certificate)
}

// Statement is one page of GET /v1/accounts/{account}/history. HistoryFrom
// is the first index this node's history holds: a statement that starts
// later than the account does is whole from there. Next is the cursor to
// pass as after for the next page, absent on the last one.
type Statement struct {
	Account     string          `json:"account"`
	HistoryFrom uint64          `json:"history_from"`
	Lines       []StatementLine `json:"lines"`
	Next        string          `json:"next,omitempty"`
}

// LineOf is ev as account's statement shows it.
func LineOf(ev *history.Event, account string) StatementLine {
	dir, other := ev.Direction(account)
	after, _ := ev.After(account)
	l := StatementLine{Cursor: ev.Cursor.String(), Index: ev.Index, Position: ev.Position, Time: TimeOf(ev.TimeMs),
		Op: ev.Op.String(), Direction: dir, Amount: ev.Amount, Counterparty: other, Code: ev.Code.String(),
		Balance: after.Balance, Held: after.Held, Hold: ev.Hold, Approval: ev.Approval, By: ev.By}
	if ev.Applied != 0 {
		l.Applied = ev.Applied.String()
	}
	return l
}

// TimeOf writes a time in ms since the epoch (the log's) as the API and
// bankctl do: RFC 3339 in UTC.
func TimeOf(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }

// Event is one applied command of GET /v1/events: its outcome and the
// accounts it touched as it left them (a customer's feed shows only its
// own; the other account of a transfer by its number, in To or Account).
type Event struct {
	Cursor   string         `json:"cursor"`
	Index    uint64         `json:"index"`
	Position uint32         `json:"position"`
	Time     string         `json:"time"`
	Op       string         `json:"op"`
	Applied  string         `json:"applied,omitempty"`
	Account  string         `json:"account,omitempty"`
	To       string         `json:"to,omitempty"`
	Name     string         `json:"name,omitempty"`
	Amount   uint64         `json:"amount,omitempty"`
	Code     string         `json:"code"`
	Hold     uint64         `json:"hold,omitempty"`
	Approval uint64         `json:"approval,omitempty"`
	By       string         `json:"by,omitempty"`
	Accounts []EventAccount `json:"accounts,omitempty"`
}

// EventAccount is an account as an event left it.
type EventAccount struct {
	Account string `json:"account"`
	Balance uint64 `json:"balance"`
	Held    uint64 `json:"held"`
}

// EventOf is ev for a caller that may see the accounts may says yes to.
func EventOf(ev *history.Event, may func(account string) bool) Event {
	out := Event{Cursor: ev.Cursor.String(), Index: ev.Index, Position: ev.Position, Time: TimeOf(ev.TimeMs),
		Op: ev.Op.String(), Account: ev.Account, To: ev.To, Name: ev.Name, Amount: ev.Amount, Code: ev.Code.String(),
		Hold: ev.Hold, Approval: ev.Approval, By: ev.By}
	if ev.Applied != 0 {
		out.Applied = ev.Applied.String()
	}
	for _, a := range ev.Accounts {
		if may(a.Number) {
			out.Accounts = append(out.Accounts, EventAccount{Account: a.Number, Balance: a.Balance, Held: a.Held})
		}
	}
	return out
}

// FeedEnd is the last line of a change feed the node ended: Reason says
// why (CodeTooSlow, CodeGone, CodeShuttingDown), Cursor where to go on
// from (the last event sent), HistoryFrom, for CodeGone, the first index
// this node holds.
type FeedEnd struct {
	End         string `json:"end"`
	Detail      string `json:"detail"`
	Cursor      string `json:"cursor"`
	HistoryFrom uint64 `json:"history_from,omitempty"`
}

// Heartbeat is the line an NDJSON change feed sends when it has had
// nothing to send for a while (SSE sends a comment): the node's time, and
// the feed's cursor.
type Heartbeat struct {
	Heartbeat string `json:"heartbeat"`
	Cursor    string `json:"cursor"`
}
