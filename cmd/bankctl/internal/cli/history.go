package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zkbank/zkbank/cmd/internal/audit"
	"github.com/zkbank/zkbank/cmd/internal/client"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
	"github.com/zkbank/zkbank/history"
)

const statementLong = `Every command that touched the account, in log order: its cursor (index
and position in the entry), time, op, direction (in or out) and
counterparty of the money, outcome, and the balance and held right after
that command (a refused command leaves them as they were). A retry the
bank answered with its first outcome changed nothing and is not listed.`

func (a *app) journalHistory() *cobra.Command {
	var dir string
	var archives []string
	cmd := &cobra.Command{
		Use:   "history ACCOUNT --data-dir DIR [--archive FILE]...",
		Short: "An account's statement from a data dir's journal, offline",
		Long: statementLong + `

This replays a data dir's journal (after its archives, with --archive);
stop the node first, or audit a copy of its data dir. To ask the running
cluster, use bankctl account history.`,
		Example: `  bankctl journal history 0000000001 --data-dir /tmp/audit
  bankctl journal history IE29-AIBK-9311 --data-dir /tmp/audit -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			trust, err := a.trust(&a.sealed)
			if err != nil {
				return err
			}
			st, r, err := statement(dir, args[0], audit.Options{Trust: trust, Archives: archives})
			if err != nil {
				return err
			}
			if len(st.Lines) == 0 {
				return wire.NewProblem(engine.CodeAccountNotFound.String(),
					fmt.Sprintf("no command in this journal (indexes %d to %d) touched account %q", r.From+1, r.Index, args[0]))
			}
			return a.showStatement(st)
		},
	}
	a.dataDirFlag(cmd, &dir)
	archiveFlag(cmd, &archives)
	return cmd
}

// statement replays the journal into a history held in memory and reads
// the account's lines from it, as a node's history would answer them.
func statement(dir, account string, opts audit.Options) (wire.Statement, *audit.Report, error) {
	h := history.OpenMem()
	defer h.Close()
	st := wire.Statement{Account: account, Lines: []wire.StatementLine{}}
	opts.History = h
	r, err := audit.Replay(dir, opts)
	if err != nil {
		return st, r, err
	}
	st.HistoryFrom = h.From()
	err = h.Statement(account, history.EndOf(r.From), func(ev history.Event) bool {
		st.Lines = append(st.Lines, wire.LineOf(&ev, account))
		return true
	})
	return st, r, err
}

func (a *app) accountHistory() *cobra.Command {
	var after string
	var limit int
	cmd := &cobra.Command{
		Use:   "history ACCOUNT [--after CURSOR --limit N]",
		Short: "An account's statement, from the cluster",
		Long: statementLong + `

Without --after it gets the whole statement: from a node whose history
goes back to the log's start, else from the one that goes back furthest,
saying where its history starts (a node that installed a peer's snapshot
holds history from there; the journal's archives hold the rest). With
--after it shows one page after that cursor (the last line's).`,
		Example: `  bankctl account history 0000000001
  bankctl account history 0000000001 --after 1042.7 --limit 50 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkAccount("account", args[0]); err != nil {
				return err
			}
			if limit < 1 || limit > 1000 {
				return usageError{fmt.Errorf("--limit %d: use 1 to 1000", limit)}
			}
			if after != "" {
				if _, err := history.ParseCursor(after); err != nil {
					return usageError{fmt.Errorf("--after: %w", err)}
				}
				return a.statementPage(args[0], after, limit)
			}
			st, err := a.wholeStatement(args[0])
			if err != nil {
				return err
			}
			return a.showStatement(st)
		},
	}
	cmd.Flags().StringVar(&after, "after", "", "one page after this cursor (INDEX.POSITION, from a line or a page's next)")
	cmd.Flags().IntVar(&limit, "limit", 100, "lines per page with --after (1..1000)")
	return cmd
}

func statementPath(account, after string, limit int) string {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if after != "" {
		q.Set("after", after)
	}
	return "/v1/accounts/" + url.PathEscape(account) + "/history?" + q.Encode()
}

func (a *app) statementPage(account, after string, limit int) error {
	var st wire.Statement
	if _, err := a.read(statementPath(account, after, limit), &st); err != nil {
		return err
	}
	if err := a.showStatement(st); err != nil {
		return err
	}
	if st.Next != "" {
		fmt.Fprintf(a.stderr, "more: bankctl account history %s --after %s --limit %d\n", account, st.Next, limit)
	}
	return nil
}

// wholeStatement finds the node whose history goes back furthest and
// pages through the account's statement from where it starts.
func (a *app) wholeStatement(account string) (wire.Statement, error) {
	c, err := a.api()
	if err != nil {
		return wire.Statement{}, err
	}
	ctx, cancel := a.ctx()
	defer cancel()
	from, err := a.furthestHistory(ctx, c, account)
	if err != nil {
		return wire.Statement{}, err
	}
	after := ""
	if from > 1 {
		after = strconv.FormatUint(from-1, 10)
		fmt.Fprintf(a.stderr, "note: no node holds history before index %d; the lines before it are in the journal's archives (bankctl journal history)\n", from)
	}
	whole := wire.Statement{Account: account, HistoryFrom: from, Lines: []wire.StatementLine{}}
	for {
		var page wire.Statement
		if _, err := c.Do(ctx, http.MethodGet, statementPath(account, after, 1000), nil, "", &page); err != nil {
			return whole, err
		}
		whole.Lines = append(whole.Lines, page.Lines...)
		if page.Next == "" {
			return whole, nil
		}
		after = page.Next
	}
}

// furthestHistory asks every node for the account's first line: 1 when
// one holds the log from its start, else the lowest history_from.
func (a *app) furthestHistory(ctx context.Context, c *client.Client, account string) (uint64, error) {
	var lowest uint64
	var errs []error
	for _, ep := range c.Endpoints() {
		var raw json.RawMessage
		status, err := c.GetJSON(ctx, ep+statementPath(account, "", 1), &raw)
		var p wire.Problem
		switch {
		case err != nil:
			errs = append(errs, err)
		case status == http.StatusOK:
			return 1, nil
		case json.Unmarshal(raw, &p) == nil && p.Code == wire.CodeHistoryGone:
			if lowest == 0 || p.HistoryFrom < lowest {
				lowest = p.HistoryFrom
			}
		case p.Code != "" && !p.Retryable:
			return 0, &p
		default:
			errs = append(errs, fmt.Errorf("%s: HTTP %d", ep, status))
		}
	}
	if lowest == 0 {
		return 0, fmt.Errorf("%w: %w", client.ErrUnavailable, errors.Join(errs...))
	}
	return lowest, nil
}

func (a *app) showStatement(st wire.Statement) error {
	if done, err := a.showJSON(st); done {
		return err
	}
	if st.HistoryFrom > 1 {
		fmt.Fprintf(a.stdout, "(history from index %d; earlier lines are not held here)\n", st.HistoryFrom)
	}
	rows := make([][]string, len(st.Lines))
	for i, l := range st.Lines {
		op := l.Op
		if l.Applied != "" {
			op += " (" + l.Applied + ")"
		}
		rows[i] = []string{l.Cursor, l.Time, op, l.Direction, fmt.Sprint(l.Amount), l.Counterparty, l.Code, fmt.Sprint(l.Balance), fmt.Sprint(l.Held), l.By}
	}
	table(a.stdout, []string{"CURSOR", "TIME", "OP", "DIR", "AMOUNT", "COUNTERPARTY", "OUTCOME", "BALANCE", "HELD", "BY"}, rows)
	return nil
}

func (a *app) eventsCommand() *cobra.Command {
	var f client.Feed
	cmd := &cobra.Command{
		Use:   "events [--from CURSOR|now] [--account A] [--follow]",
		Short: "The change feed: every command the cluster applied, with its outcome",
		Long: `Print every command the cluster applied after --from, in log order, with
its outcome and the accounts as it left them: one JSON object a line with
-o json (what a downstream system reads), a line of text otherwise. Each
has a cursor (INDEX.POSITION); --from the last one printed goes on with
the next, without a gap or a duplicate. A retry the bank answered with
its first outcome is not a new event.

Without --follow it stops once a node sent what it holds, within
--timeout (raise it to read a long history at once). With --follow it
goes on as commands are applied, until interrupted,
moving to another node when one stops or breaks off. A customer sees
only its own accounts' events.`,
		Example: `  bankctl events --from 0 -o json
  bankctl events --from now --follow
  bankctl events --account 0000000001 --from 1042.7 --follow -o json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if f.From != "now" && f.From != "" {
				if _, err := history.ParseCursor(f.From); err != nil {
					return usageError{fmt.Errorf("--from: %w", err)}
				}
			}
			if f.Account != "" {
				if err := checkAccount("--account", f.Account); err != nil {
					return err
				}
			}
			return a.follow(f)
		},
	}
	cmd.Flags().StringVar(&f.From, "from", "", `after this cursor ("" or 0: from the start; now: what is applied next)`)
	cmd.Flags().StringVar(&f.Account, "account", "", "only this account's events")
	cmd.Flags().BoolVar(&f.Follow, "follow", false, "go on as commands are applied, until interrupted")
	return cmd
}

func (a *app) follow(f client.Feed) error {
	c, err := a.api()
	if err != nil {
		return err
	}
	asJSON, err := a.jsonOutput()
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	if !f.Follow {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, a.timeout)
		defer stop()
	}
	f.Reconnected = func(ep, cursor string, why error) {
		fmt.Fprintf(a.stderr, "note: resuming after %s on %s (%v)\n", cursor, ep, why)
	}
	err = c.Events(ctx, f, func(ev wire.Event) error {
		if asJSON {
			line, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "%s\n", line)
			return err
		}
		_, err := fmt.Fprintln(a.stdout, eventText(ev))
		return err
	})
	if f.Follow && errors.Is(err, context.Canceled) {
		return nil // interrupted: the last cursor printed is where to go on
	}
	return err
}

// eventText is an event on one line.
func eventText(ev wire.Event) string {
	parts := []string{ev.Cursor, ev.Time, ev.Op}
	if ev.Applied != "" {
		parts[2] += "(" + ev.Applied + ")"
	}
	if ev.Account != "" {
		parts = append(parts, ev.Account)
	}
	if ev.To != "" {
		parts = append(parts, "->", ev.To)
	}
	if ev.Amount != 0 {
		parts = append(parts, fmt.Sprint(ev.Amount))
	}
	parts = append(parts, ev.Code)
	for _, acc := range ev.Accounts {
		parts = append(parts, fmt.Sprintf("[%s balance %d held %d]", acc.Account, acc.Balance, acc.Held))
	}
	if ev.By != "" {
		parts = append(parts, "by "+ev.By)
	}
	return strings.Join(parts, " ")
}
