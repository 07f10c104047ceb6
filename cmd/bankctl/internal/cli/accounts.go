package cli

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zkbank/zkbank/cmd/internal/client"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
)

// parseAmount reads an amount of minor units: a whole number from 1 to
// engine.MaxAmount, no sign, no decimal point.
func parseAmount(s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	var ne *strconv.NumError
	switch {
	case errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange), err == nil && v > engine.MaxAmount:
		return 0, usageError{fmt.Errorf("amount %s is too large: at most %d minor units", s, engine.MaxAmount)}
	case err != nil:
		return 0, usageError{fmt.Errorf("amount %q: give whole minor units (cents), e.g. 1250 for 12.50", s)}
	case v == 0:
		return 0, usageError{fmt.Errorf("amount 0: give at least 1 minor unit")}
	}
	return v, nil
}

// parseBalance reads an opening balance: like an amount, but 0 is fine.
func parseBalance(s string) (uint64, error) {
	if s == "0" {
		return 0, nil
	}
	return parseAmount(s)
}

// checkAccount refuses, before anything is sent, an account number the
// bank would refuse, and one that reads like a flag.
func checkAccount(what, s string) error {
	switch {
	case !engine.ValidAccountNumber(s):
		return usageError{fmt.Errorf("%s %q: %s", what, s, wire.Describe(engine.Command{}, engine.CodeInvalidAccount))}
	case s[0] == '-':
		return usageError{fmt.Errorf("%s %q: bankctl takes no account number that starts with - (it reads as a flag)", what, s)}
	}
	return nil
}

// checkPair checks the two accounts of a transfer or a hold.
func checkPair(from, to string) error {
	if err := errors.Join(checkAccount("from", from), checkAccount("to", to)); err != nil {
		return err
	}
	if from == to {
		return usageError{fmt.Errorf("%s", wire.Describe(engine.Command{}, engine.CodeSameAccount))}
	}
	return nil
}

// checkName refuses a name the bank would refuse, saying why.
func checkName(s string) error {
	if why := engine.NameProblem(s); why != "" {
		return usageError{fmt.Errorf("name %q %s", s, why)}
	}
	return nil
}

// write sends one write with a key that stays the same across retries.
func (a *app) write(method, path string, body any, key string, out any) (client.Response, error) {
	c, err := a.api()
	if err != nil {
		return client.Response{}, err
	}
	if key == "" {
		key = client.NewKey()
	} else if !engine.ValidKey(key) {
		return client.Response{}, usageError{fmt.Errorf("--key %q: %s", key, wire.Describe(engine.Command{}, engine.CodeInvalidKey))}
	}
	ctx, cancel := a.ctx()
	defer cancel()
	return c.Do(ctx, method, path, body, key, out)
}

func (a *app) read(path string, out any) (client.Response, error) {
	c, err := a.api()
	if err != nil {
		return client.Response{}, err
	}
	q, err := a.readQuery()
	if err != nil {
		return client.Response{}, err
	}
	if q != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + q
	}
	ctx, cancel := a.ctx()
	defer cancel()
	return c.Do(ctx, "GET", path, nil, "", out)
}

// writeAccount runs a write whose answer is one account and shows it.
func (a *app) writeAccount(method, path string, body any, key string) error {
	var acc wire.Account
	resp, err := a.write(method, path, body, key, &acc)
	if err != nil {
		return err
	}
	a.noteReplay(resp)
	return a.show(acc, acc)
}

func (a *app) noteReplay(resp client.Response) {
	if resp.Replayed {
		fmt.Fprintln(a.stderr, "note: this key was used before; showing the first outcome (nothing changed)")
	}
}

func (a *app) accountCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "account", Short: "Create, read, list, rename, freeze and delete accounts"}
	cmd.AddCommand(a.accountCreate(), a.accountGet(), a.accountList(), a.accountHistory(), a.accountDelete(), a.accountRename(),
		a.accountFreeze("freeze", "Stop every movement of money in or out of an account, and its closing (admin, teller)"),
		a.accountFreeze("unfreeze", "Let money move in and out of a frozen account again (admin, teller)"))
	return cmd
}

func (a *app) accountCreate() *cobra.Command {
	var body wire.CreateAccount
	var balance, key string
	cmd := &cobra.Command{
		Use: "create --name NAME [--account N] [--balance AMOUNT]", Short: "Open an account", Args: cobra.NoArgs,
		Example: "  bankctl account create --name Ada --balance 10000\n  bankctl account create --name Bob --account IE29-AIBK-9311",
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkName(body.Name); err != nil {
				return err
			}
			if body.Account != "" {
				if err := checkAccount("--account", body.Account); err != nil {
					return err
				}
			}
			if balance != "" {
				v, err := parseBalance(balance)
				if err != nil {
					return err
				}
				body.Balance = v
			}
			return a.writeAccount("POST", "/v1/accounts", body, key)
		},
	}
	cmd.Flags().StringVar(&body.Name, "name", "", "account holder's name (1..200 characters)")
	cmd.Flags().StringVar(&body.Account, "account", "", "account number to use (default: the next one the bank assigns)")
	cmd.Flags().StringVar(&balance, "balance", "", "opening balance in minor units")
	cmd.Flags().StringVar(&key, "key", "", "idempotency key (default: a new random one)")
	cmd.MarkFlagRequired("name")
	return cmd
}

func (a *app) accountGet() *cobra.Command {
	return &cobra.Command{
		Use: "get ACCOUNT", Short: "Show one account", Args: cobra.ExactArgs(1),
		Example: "  bankctl account get 0000000001\n  bankctl account get 0000000001 --consistency linearizable -o json",
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkAccount("account", args[0]); err != nil {
				return err
			}
			var acc wire.Account
			if _, err := a.read("/v1/accounts/"+url.PathEscape(args[0]), &acc); err != nil {
				return err
			}
			return a.show(acc, acc)
		},
	}
}

func (a *app) accountList() *cobra.Command {
	var after string
	var limit int
	cmd := &cobra.Command{
		Use: "list [--after N] [--limit K]", Short: "List accounts in account order", Args: cobra.NoArgs,
		Example: "  bankctl account list -o table\n  bankctl account list --after 0000000100 --limit 50",
		RunE: func(c *cobra.Command, _ []string) error {
			if limit < 1 || limit > 1000 {
				return usageError{fmt.Errorf("--limit %d: use 1 to 1000", limit)}
			}
			if after != "" {
				if err := checkAccount("--after", after); err != nil {
					return err
				}
			}
			var page wire.AccountList
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if after != "" {
				q.Set("after", after)
			}
			if _, err := a.read("/v1/accounts?"+q.Encode(), &page); err != nil {
				return err
			}
			if page.Accounts == nil {
				page.Accounts = []wire.Account{}
			}
			if err := a.show(page, page.Accounts...); err != nil {
				return err
			}
			if page.Next != "" {
				fmt.Fprintf(a.stderr, "more: bankctl account list --after %s --limit %d\n", page.Next, limit)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&after, "after", "", "start after this account number")
	cmd.Flags().IntVar(&limit, "limit", 100, "accounts per page (1..1000)")
	return cmd
}

func (a *app) accountDelete() *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use: "delete ACCOUNT", Short: "Close an account (its balance must be 0)", Args: cobra.ExactArgs(1),
		Example: "  bankctl account delete 0000000002",
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkAccount("account", args[0]); err != nil {
				return err
			}
			return a.writeAccount("DELETE", "/v1/accounts/"+url.PathEscape(args[0]), nil, key)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "idempotency key (default: a new random one)")
	return cmd
}

// accountFreeze is account freeze and account unfreeze (admin, teller).
func (a *app) accountFreeze(op, short string) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use: op + " ACCOUNT", Short: short, Args: cobra.ExactArgs(1),
		Example: "  bankctl account " + op + " 0000000002",
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkAccount("account", args[0]); err != nil {
				return err
			}
			return a.writeAccount("POST", "/v1/accounts/"+url.PathEscape(args[0])+"/"+op, nil, key)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "idempotency key (default: a new random one)")
	return cmd
}

func (a *app) accountRename() *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use: "rename ACCOUNT NAME", Short: "Change the holder's name", Args: cobra.ExactArgs(2),
		Example: "  bankctl account rename 0000000001 'Ada Lovelace'",
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkAccount("account", args[0]); err != nil {
				return err
			}
			if err := checkName(args[1]); err != nil {
				return err
			}
			return a.writeAccount("POST", "/v1/accounts/"+url.PathEscape(args[0])+"/rename", wire.Rename{Name: args[1]}, key)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "idempotency key (default: a new random one)")
	return cmd
}

func (a *app) depositCommand() *cobra.Command {
	return a.amountCommand("deposit", "Put money into an account")
}
func (a *app) withdrawCommand() *cobra.Command {
	return a.amountCommand("withdraw", "Take money out of an account")
}

func (a *app) amountCommand(op, short string) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use: op + " ACCOUNT AMOUNT", Short: short, Args: cobra.ExactArgs(2),
		Example: fmt.Sprintf("  bankctl %[1]s 0000000001 1250          # 12.50 in minor units\n  bankctl %[1]s 0000000001 1250 --key rent-2026-12", op),
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkAccount("account", args[0]); err != nil {
				return err
			}
			amount, err := parseAmount(args[1])
			if err != nil {
				return err
			}
			return a.writeAccount("POST", "/v1/accounts/"+url.PathEscape(args[0])+"/"+op, wire.Amount{Amount: amount}, key)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "idempotency key (default: a new random one)")
	return cmd
}

func (a *app) transferCommand() *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use: "transfer FROM TO AMOUNT", Short: "Move money between two accounts, atomically", Args: cobra.ExactArgs(3),
		Example: "  bankctl transfer 0000000001 0000000002 2500\n  bankctl transfer 0000000001 0000000002 2500 --key invoice-77",
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkPair(args[0], args[1]); err != nil {
				return err
			}
			amount, err := parseAmount(args[2])
			if err != nil {
				return err
			}
			var res wire.TransferResult
			resp, err := a.write("POST", "/v1/transfers", wire.Transfer{From: args[0], To: args[1], Amount: amount}, key, &res)
			if err != nil {
				return err
			}
			a.noteReplay(resp)
			return a.show(res, res.From, res.To)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "idempotency key (default: a new random one)")
	return cmd
}
