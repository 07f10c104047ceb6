package cli

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/zkbank/zkbank/cmd/internal/wire"
)

func (a *app) approvalsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "approvals",
		Short: "Four eyes: the deposits, withdrawals and transfers that wait for a second teller or an admin",
		Long: "An admin sets, per role (teller, customer), the largest amount one of its principals moves alone.\n" +
			"A deposit, withdrawal or transfer above it is not applied: it waits (exit 7) as an approval,\n" +
			"until another teller or an admin approves it (it is applied then) or rejects it, or a day passes.\n" +
			"No principal decides its own.",
	}
	cmd.AddCommand(a.approvalsList(), a.approvalsGet(), a.approvalsDecide("approve", "Apply a waiting command (teller, admin; never its own)"),
		a.approvalsDecide("reject", "Refuse a waiting command (teller, admin; never its own)"), a.approvalsLimit(), a.approvalsLimits())
	return cmd
}

func (a *app) approvalsList() *cobra.Command {
	var after uint64
	var limit int
	var all bool
	cmd := &cobra.Command{
		Use: "list [--all] [--after ID] [--limit K]", Short: "List the approvals waiting (with --all, the recently decided too)", Args: cobra.NoArgs,
		Example: "  bankctl approvals list\n  bankctl approvals list --all -o json",
		RunE: func(c *cobra.Command, _ []string) error {
			if limit < 1 || limit > 1000 {
				return usageError{fmt.Errorf("--limit %d: use 1 to 1000", limit)}
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}, "after": {strconv.FormatUint(after, 10)}, "status": {"pending"}}
			if all {
				q.Set("status", "all")
			}
			var page wire.ApprovalList
			if _, err := a.read("/v1/approvals?"+q.Encode(), &page); err != nil {
				return err
			}
			if page.Approvals == nil {
				page.Approvals = []wire.Approval{}
			}
			if err := a.showApprovals(page, page.Approvals...); err != nil {
				return err
			}
			if page.Next != 0 {
				fmt.Fprintf(a.stderr, "more: bankctl approvals list --after %d --limit %d\n", page.Next, limit)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "the recently decided and expired approvals too")
	cmd.Flags().Uint64Var(&after, "after", 0, "start after this approval id")
	cmd.Flags().IntVar(&limit, "limit", 100, "approvals per page (1..1000)")
	return cmd
}

func (a *app) approvalsGet() *cobra.Command {
	return &cobra.Command{
		Use: "get ID", Short: "Show one approval", Args: cobra.ExactArgs(1),
		Example: "  bankctl approvals get 4 -o json",
		RunE: func(c *cobra.Command, args []string) error {
			id, err := parseApprovalID(args[0])
			if err != nil {
				return err
			}
			var ap wire.Approval
			if _, err := a.read("/v1/approvals/"+strconv.FormatUint(id, 10), &ap); err != nil {
				return err
			}
			return a.showApprovals(ap, ap)
		},
	}
}

func (a *app) approvalsDecide(verb, short string) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use: verb + " ID", Short: short, Args: cobra.ExactArgs(1),
		Example: "  bankctl approvals " + verb + " 4",
		RunE: func(c *cobra.Command, args []string) error {
			id, err := parseApprovalID(args[0])
			if err != nil {
				return err
			}
			var res wire.ApprovalResult
			resp, err := a.write("POST", "/v1/approvals/"+strconv.FormatUint(id, 10)+"/"+verb, nil, key, &res)
			if err != nil {
				return err
			}
			a.noteReplay(resp)
			if done, err := a.showJSON(res); done {
				return err
			}
			a.approvalTable(res.Approval)
			if len(res.Accounts) > 0 {
				fmt.Fprintln(a.stdout)
				return a.show(nil, res.Accounts...)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "idempotency key (default: a new random one)")
	return cmd
}

func (a *app) approvalsLimit() *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use: "limit ROLE AMOUNT", Short: "Set the largest amount a teller's or a customer's command moves alone (admin; 0: no limit)", Args: cobra.ExactArgs(2),
		Example: "  bankctl approvals limit teller 1000000\n  bankctl approvals limit teller 0",
		RunE: func(c *cobra.Command, args []string) error {
			if args[0] != "teller" && args[0] != "customer" {
				return usageError{fmt.Errorf("role %q: limits are for teller or customer (admins are never held)", args[0])}
			}
			amount, err := parseBalance(args[1])
			if err != nil {
				return err
			}
			var out wire.ApprovalLimit
			if _, err := a.write("POST", "/v1/admin/approval-limits", wire.ApprovalLimit{Role: args[0], Limit: amount}, key, &out); err != nil {
				return err
			}
			return a.showLimits(out)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "idempotency key (default: a new random one)")
	return cmd
}

func (a *app) approvalsLimits() *cobra.Command {
	return &cobra.Command{
		Use: "limits", Short: "Show the approval limits (admin, auditor)", Args: cobra.NoArgs,
		Example: "  bankctl approvals limits -o table",
		RunE: func(c *cobra.Command, _ []string) error {
			var out wire.ApprovalLimits
			if _, err := a.read("/v1/admin/approval-limits", &out); err != nil {
				return err
			}
			return a.showLimits(out, out.Limits...)
		},
	}
}

func (a *app) showLimits(v any, limits ...wire.ApprovalLimit) error {
	if done, err := a.showJSON(v); done {
		return err
	}
	if l, ok := v.(wire.ApprovalLimit); ok {
		limits = []wire.ApprovalLimit{l}
	}
	rows := make([][]string, len(limits))
	for i, l := range limits {
		rows[i] = []string{l.Role, fmt.Sprint(l.Limit)}
	}
	table(a.stdout, []string{"ROLE", "LIMIT"}, rows)
	return nil
}

// showApprovals prints v as JSON, or as a table of approvals.
func (a *app) showApprovals(v any, list ...wire.Approval) error {
	if done, err := a.showJSON(v); done {
		return err
	}
	a.approvalTable(list...)
	return nil
}

func (a *app) approvalTable(list ...wire.Approval) {
	rows := make([][]string, len(list))
	for i, ap := range list {
		rows[i] = []string{fmt.Sprint(ap.ID), ap.Op, ap.Account, ap.To, fmt.Sprint(ap.Amount), ap.By, ap.Status, ap.Outcome,
			time.UnixMilli(ap.ExpiresMs).UTC().Format(time.RFC3339)}
	}
	table(a.stdout, []string{"APPROVAL", "OP", "ACCOUNT", "TO", "AMOUNT", "BY", "STATUS", "OUTCOME", "EXPIRES"}, rows)
}

func parseApprovalID(s string) (uint64, error) { return parseID("approval", "approvals list", s) }
