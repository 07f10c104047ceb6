package cli

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
)

func (a *app) holdCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hold",
		Short: "Reserve money now and move it later: create, capture, void, get and list holds",
		Long: "A hold reserves an amount of an account's available money for another account until it expires.\n" +
			"Capturing it moves all or part of it and releases the rest; voiding it, or its expiry, releases it all.\n" +
			"The account's balance stays the same until a capture: balance = available + held.",
	}
	cmd.AddCommand(a.holdCreate(), a.holdCapture(), a.holdVoid(), a.holdGet(), a.holdList())
	return cmd
}

func (a *app) holdCreate() *cobra.Command {
	var key string
	var expiresIn time.Duration
	cmd := &cobra.Command{
		Use: "create FROM TO AMOUNT [--expires-in DURATION]", Short: "Reserve AMOUNT of FROM's available money for TO", Args: cobra.ExactArgs(3),
		Example: "  bankctl hold create 0000000001 0000000002 2500\n  bankctl hold create 0000000001 0000000002 2500 --expires-in 30m --key auth-9912",
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkPair(args[0], args[1]); err != nil {
				return err
			}
			amount, err := parseAmount(args[2])
			if err != nil {
				return err
			}
			if expiresIn < time.Millisecond || expiresIn > engine.HoldTTLMax*time.Millisecond {
				return usageError{fmt.Errorf("--expires-in %v: use 1ms to 2160h (90 days)", expiresIn)}
			}
			body := wire.CreateHold{From: args[0], To: args[1], Amount: amount, ExpiresInMs: uint64(expiresIn.Milliseconds())}
			return a.writeHold("/v1/holds", body, key)
		},
	}
	cmd.Flags().DurationVar(&expiresIn, "expires-in", wire.DefaultHoldExpiryMs*time.Millisecond, "how long the hold holds, in the log's time (1ms to 2160h)")
	cmd.Flags().StringVar(&key, "key", "", "idempotency key (default: a new random one)")
	return cmd
}

func (a *app) holdCapture() *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use: "capture ID [AMOUNT]", Short: "Move a hold's money (all of it, or AMOUNT) to its TO and release the rest", Args: cobra.RangeArgs(1, 2),
		Example: "  bankctl hold capture 17\n  bankctl hold capture 17 1800 --key capture-9912",
		RunE: func(c *cobra.Command, args []string) error {
			id, err := parseHoldID(args[0])
			if err != nil {
				return err
			}
			var body wire.Amount
			if len(args) == 2 {
				if body.Amount, err = parseAmount(args[1]); err != nil {
					return err
				}
			}
			return a.writeHold("/v1/holds/"+strconv.FormatUint(id, 10)+"/capture", body, key)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "idempotency key (default: a new random one)")
	return cmd
}

func (a *app) holdVoid() *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use: "void ID", Short: "Release a hold: its money is available to FROM again (frozen accounts too)", Args: cobra.ExactArgs(1),
		Example: "  bankctl hold void 17",
		RunE: func(c *cobra.Command, args []string) error {
			id, err := parseHoldID(args[0])
			if err != nil {
				return err
			}
			return a.writeHold("/v1/holds/"+strconv.FormatUint(id, 10)+"/void", nil, key)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "idempotency key (default: a new random one)")
	return cmd
}

func (a *app) holdGet() *cobra.Command {
	return &cobra.Command{
		Use: "get ID", Short: "Show one hold", Args: cobra.ExactArgs(1),
		Example: "  bankctl hold get 17 -o json",
		RunE: func(c *cobra.Command, args []string) error {
			id, err := parseHoldID(args[0])
			if err != nil {
				return err
			}
			var h wire.Hold
			if _, err := a.read("/v1/holds/"+strconv.FormatUint(id, 10), &h); err != nil {
				return err
			}
			return a.showHolds(h, h)
		},
	}
}

func (a *app) holdList() *cobra.Command {
	var after uint64
	var limit int
	cmd := &cobra.Command{
		Use: "list ACCOUNT [--after ID] [--limit K]", Short: "List the holds from or to an account, open and recently closed, in id order", Args: cobra.ExactArgs(1),
		Example: "  bankctl hold list 0000000001\n  bankctl hold list 0000000001 --after 17 --limit 50",
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkAccount("account", args[0]); err != nil {
				return err
			}
			if limit < 1 || limit > 1000 {
				return usageError{fmt.Errorf("--limit %d: use 1 to 1000", limit)}
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}, "after": {strconv.FormatUint(after, 10)}}
			var page wire.HoldList
			if _, err := a.read("/v1/accounts/"+url.PathEscape(args[0])+"/holds?"+q.Encode(), &page); err != nil {
				return err
			}
			if page.Holds == nil {
				page.Holds = []wire.Hold{}
			}
			if err := a.showHolds(page, page.Holds...); err != nil {
				return err
			}
			if page.Next != 0 {
				fmt.Fprintf(a.stderr, "more: bankctl hold list %s --after %d --limit %d\n", args[0], page.Next, limit)
			}
			return nil
		},
	}
	cmd.Flags().Uint64Var(&after, "after", 0, "start after this hold id")
	cmd.Flags().IntVar(&limit, "limit", 100, "holds per page (1..1000)")
	return cmd
}

// writeHold runs a hold op and shows the hold, then the accounts it moved.
func (a *app) writeHold(path string, body any, key string) error {
	var res wire.HoldResult
	resp, err := a.write("POST", path, body, key, &res)
	if err != nil {
		return err
	}
	a.noteReplay(resp)
	if done, err := a.showJSON(res); done {
		return err
	}
	a.holdTable(res.Hold)
	var accts []wire.Account
	for _, acc := range []*wire.Account{res.From, res.To} {
		if acc != nil {
			accts = append(accts, *acc)
		}
	}
	if len(accts) > 0 {
		fmt.Fprintln(a.stdout)
		return a.show(nil, accts...)
	}
	return nil
}

// showHolds prints v as JSON, or as a table of holds.
func (a *app) showHolds(v any, holds ...wire.Hold) error {
	if done, err := a.showJSON(v); done {
		return err
	}
	a.holdTable(holds...)
	return nil
}

func (a *app) holdTable(holds ...wire.Hold) {
	rows := make([][]string, len(holds))
	for i, h := range holds {
		rows[i] = []string{fmt.Sprint(h.ID), h.From, h.To, fmt.Sprint(h.Amount), fmt.Sprint(h.Captured), h.Status,
			time.UnixMilli(h.ExpiresMs).UTC().Format(time.RFC3339), fmt.Sprint(h.CreatedIndex)}
	}
	table(a.stdout, []string{"HOLD", "FROM", "TO", "AMOUNT", "CAPTURED", "STATUS", "EXPIRES", "CREATED"}, rows)
}

// parseID reads the id of a hold or an approval: a whole number of 1 or
// more, as shownBy prints it.
func parseID(kind, shownBy, s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, usageError{fmt.Errorf("%s %q: the id is a whole number of 1 or more, as %s prints it", kind, s, shownBy)}
	}
	return id, nil
}

func parseHoldID(s string) (uint64, error) { return parseID("hold", "hold create", s) }
