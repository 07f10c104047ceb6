package history

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/internal/varint"
)

// Cursor names an event: the entry's index and the command's position in
// it, from 0. A feed or a statement resumed "after" a cursor goes on with
// the event after it, so a consumer that keeps its last cursor sees
// neither a gap nor a duplicate.
type Cursor struct {
	Index    uint64
	Position uint32
}

// String is the cursor as the API writes it: "INDEX.POSITION", or
// "INDEX" for the end of an entry (EndOf), as ParseCursor reads them.
func (c Cursor) String() string {
	if c.Position == lastPosition {
		return strconv.FormatUint(c.Index, 10)
	}
	return strconv.FormatUint(c.Index, 10) + "." + strconv.FormatUint(uint64(c.Position), 10)
}

// Less orders cursors as the log does.
func (c Cursor) Less(d Cursor) bool {
	return c.Index < d.Index || c.Index == d.Index && c.Position < d.Position
}

// ParseCursor reads "INDEX.POSITION", or "INDEX" alone: the cursor of an
// entry's last event (whatever its position), so "after INDEX" starts
// with the next entry's first event; "0" is before every event.
func ParseCursor(s string) (Cursor, error) {
	i, p, dotted := strings.Cut(s, ".")
	index, err := strconv.ParseUint(i, 10, 64)
	if err != nil {
		return Cursor{}, fmt.Errorf("cursor %q: want INDEX.POSITION, such as 1042.7", s)
	}
	if !dotted {
		return Cursor{Index: index, Position: lastPosition}, nil
	}
	pos, err := strconv.ParseUint(p, 10, 32)
	if err != nil || pos >= lastPosition {
		return Cursor{}, fmt.Errorf("cursor %q: want INDEX.POSITION, such as 1042.7", s)
	}
	return Cursor{Index: index, Position: uint32(pos)}, nil
}

// lastPosition stands for "the entry's last event" in a cursor.
const lastPosition = 1<<32 - 1

// EndOf is the cursor of the last event of the entry at index, whatever
// its position: after it comes the next entry's first.
func EndOf(index uint64) Cursor { return Cursor{Index: index, Position: lastPosition} }

// AccountAfter is an account as a command left it.
type AccountAfter struct {
	Number  string
	Balance uint64
	Held    uint64
}

// Event is one applied command with its outcome: what a statement line
// and the change feed are made of. Account, To and Amount are the money's
// as the command moved it: a capture's are its hold's (from, to and what
// it captured), an approval's the command it applied (Applied names its
// op).
type Event struct {
	Cursor
	TimeMs   int64 // the entry's effective time
	Op       engine.Op
	Applied  engine.Op // an approve's command; 0 for the other ops
	Account  string
	To       string
	Name     string // an account's, for create_account and rename
	Amount   uint64
	Code     engine.Code
	Hold     uint64
	Approval uint64
	By       string // who sent it, by name (engine.Engine.PrincipalName)
	Accounts []AccountAfter
}

// Before is what an entry's events start from: the accounts its commands
// name, as they are before it (read from e before it applies the entry),
// in out, emptied first (nil: a new map).
func Before(e *engine.Engine, ent *engine.Entry, out map[string]AccountAfter) map[string]AccountAfter {
	if out == nil {
		out = make(map[string]AccountAfter, 2*len(ent.Commands))
	}
	clear(out)
	add := func(n string) {
		if _, seen := out[n]; n == "" || seen {
			return
		}
		if a, ok := e.Get(n); ok {
			out[n] = AccountAfter{Number: a.Number, Balance: a.Balance, Held: a.Held}
		}
	}
	for i := range ent.Commands {
		add(ent.Commands[i].Account)
		add(ent.Commands[i].To)
	}
	return out
}

// adding is what Store.Add keeps while it turns an entry into events:
// the accounts as the commands so far left them (from Before), the
// principals' names, and buffers it reuses.
type adding struct {
	accounts map[string]AccountAfter
	names    map[string]string
	touched  []string
	after    []AccountAfter
}

func (ad *adding) name(e *engine.Engine, by string) string {
	n, ok := ad.names[by]
	if !ok {
		n = e.PrincipalName(by)
		ad.names[by] = n
	}
	return n
}

// eventOf is the event of the command at pos of ent, given its result and
// the engine that applied it; its Accounts and the touched list it
// leaves in ad are ad's buffers, good until the next call.
func eventOf(ent *engine.Entry, pos int, res *engine.Result, e *engine.Engine, ad *adding) Event {
	c := &ent.Commands[pos]
	ev := Event{Cursor: Cursor{Index: ent.Index, Position: uint32(pos)}, TimeMs: e.TimeMs(), Op: c.Op,
		Account: c.Account, To: c.To, Amount: c.Amount, Code: res.Code, Hold: c.Hold, Approval: c.Approval,
		By: ad.name(e, c.Principal)}
	if c.Op == engine.OpCreateAccount || c.Op == engine.OpRename {
		ev.Name = c.Name
	}
	if h := res.Hold; h != nil {
		ev.Hold = h.ID
		if c.Op == engine.OpCaptureHold {
			ev.Account, ev.To, ev.Amount = h.From, h.To, h.Captured
		}
	}
	if a := res.Approval; a != nil {
		ev.Approval = a.ID
		if c.Op == engine.OpApprove {
			ev.Applied, ev.Account, ev.To, ev.Amount = a.Op, a.Account, a.To, a.Amount
		}
	}
	for _, a := range res.Accounts() {
		ad.accounts[a.Number] = AccountAfter{Number: a.Number, Balance: a.Balance, Held: a.Held}
	}
	// The accounts it is about, each once: the ones it names and the ones
	// its result carries (an account a create numbered).
	ad.touched, ad.after = ad.touched[:0], ad.after[:0]
	add := func(n string) {
		if n == "" || slices.Contains(ad.touched, n) {
			return
		}
		ad.touched = append(ad.touched, n)
		if a, ok := ad.accounts[n]; ok {
			ad.after = append(ad.after, a)
		}
	}
	add(ev.Account)
	add(ev.To)
	for _, a := range res.Accounts() {
		add(a.Number)
	}
	ev.Accounts = ad.after
	return ev
}

// Touches lists the accounts the event is about: those it names, and
// those it carries.
func (ev *Event) Touches() []string {
	out := make([]string, 0, 2)
	add := func(n string) {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	add(ev.Account)
	add(ev.To)
	for _, a := range ev.Accounts {
		add(a.Number)
	}
	return out
}

// After is account as the event left it (as it was, for a command that
// was refused), if the account existed.
func (ev *Event) After(account string) (AccountAfter, bool) {
	for _, a := range ev.Accounts {
		if a.Number == account {
			return a, true
		}
	}
	return AccountAfter{}, false
}

// moves is the op of the money the event moved: a capture moves as a
// transfer, an approval as the command it applied.
func (ev *Event) moves() engine.Op {
	switch {
	case ev.Op == engine.OpCaptureHold:
		return engine.OpTransfer
	case ev.Op == engine.OpApprove && ev.Applied != 0:
		return ev.Applied
	}
	return ev.Op
}

// Direction is "in" or "out" for money that moved into or out of
// account (or would have, for a command that was refused), with the
// other account of a transfer; "" for a command that moves no money.
func (ev *Event) Direction(account string) (dir, counterparty string) {
	switch ev.moves() {
	case engine.OpDeposit:
		return "in", ""
	case engine.OpWithdraw:
		return "out", ""
	case engine.OpCreateAccount:
		if ev.Amount > 0 {
			return "in", ""
		}
	case engine.OpTransfer:
		if ev.To == account {
			return "in", ev.Account
		}
		return "out", ev.To
	}
	return "", ""
}

var errCorrupt = errors.New("history: corrupt event")

// appendEvent encodes ev (without its cursor, which is its key).
func appendEvent(b []byte, ev *Event) []byte {
	b = binary.AppendVarint(b, ev.TimeMs)
	b = append(b, byte(ev.Op), byte(ev.Applied), byte(ev.Code))
	b = appendString(b, ev.Account)
	b = appendString(b, ev.To)
	b = appendString(b, ev.Name)
	b = binary.AppendUvarint(b, ev.Amount)
	b = binary.AppendUvarint(b, ev.Hold)
	b = binary.AppendUvarint(b, ev.Approval)
	b = appendString(b, ev.By)
	b = append(b, byte(len(ev.Accounts)))
	for _, a := range ev.Accounts {
		b = appendString(b, a.Number)
		b = binary.AppendUvarint(b, a.Balance)
		b = binary.AppendUvarint(b, a.Held)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// decodeEvent reads what appendEvent wrote.
func decodeEvent(c Cursor, b []byte) (Event, error) {
	d := varint.NewReader(b)
	ev := Event{Cursor: c, TimeMs: d.Varint()}
	ops := d.Bytes(3)
	if len(ops) == 3 {
		ev.Op, ev.Applied, ev.Code = engine.Op(ops[0]), engine.Op(ops[1]), engine.Code(ops[2])
	}
	ev.Account, ev.To, ev.Name = d.String(), d.String(), d.String()
	ev.Amount, ev.Hold, ev.Approval = d.Uvarint(), d.Uvarint(), d.Uvarint()
	ev.By = d.String()
	n := d.Bytes(1)
	if len(n) == 1 && n[0] > 0 {
		ev.Accounts = make([]AccountAfter, n[0])
		for i := range ev.Accounts {
			ev.Accounts[i] = AccountAfter{Number: d.String(), Balance: d.Uvarint(), Held: d.Uvarint()}
		}
	}
	if !d.Done() {
		return Event{}, fmt.Errorf("%w at %s", errCorrupt, c)
	}
	return ev, nil
}
