package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
)

const tokenLong = `API tokens: bearer secrets with a role, kept in the bank's replicated
state as hashes (every node takes or refuses a token from the same log
index on). Roles:

  admin     everything, tokens and certificates included
  teller    every account operation and read
  auditor   every read, digest, cluster and history; no writes
  customer  its --accounts only: reads them, and withdraws or transfers
            only out of them

A client sends one as Authorization: Bearer <token> (bankctl: --token or
BANKCTL_TOKEN). Admins only (auditors may list).`

func (a *app) tokenCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Create, list and revoke API tokens (admin)", Long: tokenLong}
	cmd.AddCommand(a.tokenCreate(), a.tokenList(), a.tokenRevoke())
	return cmd
}

func (a *app) tokenCreate() *cobra.Command {
	var role, name, expires string
	var accounts []string
	cmd := &cobra.Command{
		Use:   "create --role ROLE [--accounts A,B] [--name NAME] [--expires DURATION]",
		Short: "Create a token and print its secret, once",
		Long: `Create a token. bankctl makes the 256-bit secret here and sends only its
SHA-256, so the secret never travels and a retry is safe; it is printed
once (-o json: an object with id and token) and cannot be shown again:
store it now. --expires is judged by the log's time.`,
		Example: "  bankctl token create --role teller --name branch-7\n" +
			"  bankctl token create --role customer --accounts 0000000001,0000000002 --expires 720h\n" +
			"  export BANKCTL_TOKEN=$(bankctl token create --role auditor -o json | jq -r .token)",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if name == "" {
				var b [3]byte
				rand.Read(b[:])
				name = role + "-" + hex.EncodeToString(b[:])
			}
			if _, ok := engine.ParseRole(role); !ok {
				return usageError{fmt.Errorf("--role %q: use admin, teller, auditor or customer", role)}
			}
			if (role == "customer") != (len(accounts) > 0) {
				return usageError{fmt.Errorf("--accounts: a customer's token names its accounts (1 to %d), and no other role's does", engine.TokenAccountsMax)}
			}
			if expires != "" {
				if d, err := time.ParseDuration(expires); err != nil || d <= 0 {
					return usageError{fmt.Errorf("--expires %q: a duration like 720h", expires)}
				}
			}
			secret := wire.NewToken()
			var tok wire.Token
			req := wire.TokenRequest{Name: name, Role: role, Accounts: accounts, ExpiresIn: expires, SecretSHA256: wire.TokenHashHex(secret)}
			if _, err := a.write("POST", "/v1/admin/tokens", req, "", &tok); err != nil {
				return err
			}
			tok.Token = secret
			if done, err := a.showJSON(tok); done {
				return err
			}
			fmt.Fprintf(a.stdout, "token %d (%s, %s) created at index %d%s. Its secret, shown this once:\n\n  %s\n\n",
				tok.ID, tok.Name, tok.Role, tok.CreatedIndex, expiresText(tok), secret)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&role, "role", "", "admin, teller, auditor or customer (required)")
	f.StringSliceVar(&accounts, "accounts", nil, "a customer's accounts, comma-separated")
	f.StringVar(&name, "name", "", "a name for people and logs (default: the role and a random suffix)")
	f.StringVar(&expires, "expires", "", "lifetime, like 720h (default: none)")
	cmd.MarkFlagRequired("role")
	return cmd
}

func expiresText(t wire.Token) string {
	if t.ExpiresAt == "" {
		return ""
	}
	return ", expires " + t.ExpiresAt
}

func (a *app) tokenList() *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List the tokens (never their secrets), revoked ones included",
		Example: "  bankctl token list\n  bankctl token list -o json | jq '.tokens[] | select(.revoked_index == null)'",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var out wire.Tokens
			if _, err := a.read("/v1/admin/tokens", &out); err != nil {
				return err
			}
			if done, err := a.showJSON(out); done {
				return err
			}
			rows := make([][]string, len(out.Tokens))
			for i, t := range out.Tokens {
				revoked := ""
				if t.RevokedIndex != 0 {
					revoked = strconv.FormatUint(t.RevokedIndex, 10)
				}
				rows[i] = []string{strconv.FormatUint(t.ID, 10), t.Name, t.Role, strings.Join(t.Accounts, ","), t.ExpiresAt, strconv.FormatUint(t.CreatedIndex, 10), revoked}
			}
			table(a.stdout, []string{"ID", "NAME", "ROLE", "ACCOUNTS", "EXPIRES", "CREATED", "REVOKED"}, rows)
			return nil
		},
	}
}

func (a *app) tokenRevoke() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token: refused from one log index on, on every node; waits until every live node applied it",
		Long: `Revoke a token through the log. From the index of the revocation on,
every node refuses the token, and the engine refuses any of its commands
still on their way (forwarded by a slow node, queued at the leader). A
node that has not applied the revocation yet may still serve the token's
reads, so bankctl waits until every live member has applied it, and says
which has not (exit 6) if one does not within --timeout.`,
		Example: "  bankctl token revoke 7",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || id == 0 {
				return usageError{fmt.Errorf("token id %q: a number, as token list shows it", args[0])}
			}
			var tok wire.Token
			if _, err := a.write("DELETE", "/v1/admin/tokens/"+args[0], nil, "", &tok); err != nil {
				return err
			}
			behind, err := a.untilEveryNodeApplied(tok.RevokedIndex)
			if err != nil {
				return err
			}
			if done, err := a.showJSON(tok); done && len(behind) == 0 {
				return err
			}
			if len(behind) > 0 {
				fmt.Fprintf(a.stderr, "token %d revoked at index %d, but not yet applied on %s: it may still read there\n", tok.ID, tok.RevokedIndex, strings.Join(behind, ", "))
				return exitError(ExitDegraded)
			}
			fmt.Fprintf(a.stdout, "token %d (%s) revoked at index %d; every live node applied it\n", tok.ID, tok.Name, tok.RevokedIndex)
			return nil
		},
	}
}

// untilEveryNodeApplied waits until every live member answers a read at
// or past index, and returns those that did not within the timeout.
func (a *app) untilEveryNodeApplied(index uint64) ([]string, error) {
	var cl wire.Cluster
	if _, err := a.read("/v1/cluster", &cl); err != nil {
		return nil, err
	}
	c, err := a.api()
	if err != nil {
		return nil, err
	}
	ctx, cancel := a.ctx()
	defer cancel()
	var behind []string
	for _, m := range cl.Members {
		if !m.Live {
			continue
		}
		var page wire.AccountList // any read with min_index: 200 once the member applied it
		mctx, mcancel := context.WithTimeout(ctx, a.attemptTimeout)
		status, err := c.GetJSON(mctx, fmt.Sprintf("%s/v1/accounts?limit=1&min_index=%d", m.Addr, index), &page)
		mcancel()
		if err != nil || status != 200 {
			behind = append(behind, m.ID)
		}
	}
	return behind, nil
}
