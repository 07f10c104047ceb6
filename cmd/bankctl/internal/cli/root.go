// Package cli is bankctl's command tree: account commands against a
// cluster, offline audits of data dirs, the local dev cluster, and an
// interactive shell over the same commands.
package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/zkbank/zkbank/cmd/internal/audit"
	"github.com/zkbank/zkbank/cmd/internal/client"
	"github.com/zkbank/zkbank/cmd/internal/devcluster"
	"github.com/zkbank/zkbank/cmd/internal/tlsconf"
	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
)

// Exit codes, stable and documented in `bankctl --help`.
const (
	ExitOK          = 0
	ExitError       = 1 // anything else (a file that cannot be read, ...)
	ExitUsage       = 2 // bad arguments or flags
	ExitRejected    = 3 // the bank refused the command (4xx problem)
	ExitUnavailable = 4 // no endpoint answered in time, or it failed (5xx)
	ExitMismatch    = 5 // an audit or verification found damage or disagreement
	ExitDegraded    = 6 // cluster status: the bank serves, but something needs a look
	ExitPending     = 7 // not applied yet: the write waits for a second principal's approval
)

// DefaultEndpoints are the API addresses of `bankctl dev up`'s defaults.
const DefaultEndpoints = "127.0.0.1:8081,127.0.0.1:8082,127.0.0.1:8083"

// app carries global flags and I/O for one invocation.
type app struct {
	endpoints      string
	output         string
	timeout        time.Duration
	attemptTimeout time.Duration
	consistency    string
	flags          *pflag.FlagSet
	tls            tlsconf.Files // --cacert, --cert, --key-file
	sealed         sealedFlags   // the journal commands' --data-keys, --cluster-id
	token          string        // --token
	stdin          io.Reader
	stdout         io.Writer
	stderr         io.Writer
	client         *client.Client
}

// usageError marks errors in how bankctl was called.
type usageError struct{ error }

// Execute runs bankctl with args and returns the exit code.
func Execute(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	var said exitError // the command said why already (a verdict, a script's lines)
	if !errors.As(err, &said) {
		fmt.Fprintln(stderr, "Error:", err)
	}
	return exitCode(err)
}

func exitCode(err error) int {
	var p *wire.Problem
	var u usageError
	var e exitError
	var pending *client.Pending
	switch {
	case errors.As(err, &e):
		return int(e)
	case errors.As(err, &pending):
		return ExitPending
	case errors.As(err, &u):
		return ExitUsage
	case errors.Is(err, client.ErrUnavailable), errors.Is(err, client.ErrOutcomeUnknown):
		return ExitUnavailable
	case errors.As(err, &p):
		if p.Status >= 500 {
			return ExitUnavailable
		}
		return ExitRejected
	case errors.Is(err, audit.ErrMismatch):
		return ExitMismatch
	case strings.HasPrefix(err.Error(), "unknown command"), strings.HasPrefix(err.Error(), "unknown flag"),
		strings.HasPrefix(err.Error(), "unknown shorthand flag"), strings.Contains(err.Error(), "arg(s)"),
		strings.HasPrefix(err.Error(), "invalid argument"), strings.Contains(err.Error(), "flag needs an argument"),
		strings.Contains(err.Error(), "required flag"):
		return ExitUsage
	}
	return ExitError
}

const rootLong = `bankctl talks to a zkbank cluster and inspects bankd data dirs.

Amounts are integers in minor units (cents). Every write carries an
idempotency key, kept across retries, so a retried command never applies
twice; it fails over between --endpoints (or BANKCTL_ENDPOINTS).

Each try at one endpoint has its own deadline (--attempt-timeout), so a
hung node cannot stop the failover to the others; while it waits, bankctl
says why on stderr.

Exit codes:
  0  success
  1  other error (e.g. a file that cannot be read)
  2  usage error (bad arguments or flags); nothing was sent
  3  the bank rejected the command (e.g. insufficient_funds)
  4  the cluster is unavailable: no endpoint answered in time, or 5xx.
     A write that reached a node may still have been applied: bankctl
     then says "outcome unknown" and prints the --key to retry with (the
     same key never applies twice; a batch: run the same command again)
  5  an audit or verification found damage or a mismatch
  6  cluster status: degraded (the bank serves, something needs a look)
  7  not applied yet: the write is above its role's approval limit and
     waits for a second teller or an admin (bankctl approvals approve ID)

Idempotency keys are remembered for ` + keyMemory + `.
A retry older than that is applied as new.`

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use: "bankctl", Short: "Use and operate a zkbank cluster", Long: rootLong,
		SilenceUsage: true, SilenceErrors: true,
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(flagError)
	pf := root.PersistentFlags()
	a.flags = pf
	pf.StringVar(&a.endpoints, "endpoints", envOr("BANKCTL_ENDPOINTS", DefaultEndpoints),
		"comma-separated bankd API addresses or URLs (env BANKCTL_ENDPOINTS; default: the dev cluster bankctl dev up started, else "+DefaultEndpoints+")")
	pf.StringVar(&a.tls.CA, "cacert", os.Getenv("BANKCTL_CACERT"), "the cluster's CA bundle (env BANKCTL_CACERT): the nodes must chain to it; speaks HTTPS")
	pf.StringVar(&a.tls.Cert, "cert", os.Getenv("BANKCTL_CERT"), "client certificate to present (env BANKCTL_CERT)")
	pf.StringVar(&a.tls.Key, "key-file", os.Getenv("BANKCTL_KEY"), "its private key (env BANKCTL_KEY)")
	pf.StringVar(&a.token, "token", "", "API token to authenticate with (env BANKCTL_TOKEN; a flag's value shows in ps: prefer the environment)")
	pf.StringVarP(&a.output, "output", "o", "", "output format: table or json (default: table on a terminal, else json)")
	pf.DurationVar(&a.timeout, "timeout", 15*time.Second, "how long to keep trying the endpoints")
	pf.DurationVar(&a.attemptTimeout, "attempt-timeout", client.DefaultAttemptTimeout, "how long one try at one endpoint may take before the next is tried")
	pf.StringVar(&a.consistency, "consistency", "local", "reads: local or linearizable")
	root.InitDefaultCompletionCmd()
	root.AddCommand(a.backupCommand(), a.accountCommand(), a.depositCommand(), a.withdrawCommand(), a.transferCommand(), a.holdCommand(), a.approvalsCommand(),
		a.batchCommand(), a.clusterCommand(), a.tokenCommand(), a.certsCommand(), a.journalCommand(), a.snapshotCommand(), a.devCommand(), a.benchCommand(),
		a.zookeeperCommand(), a.shellCommand(), a.eventsCommand())
	return root
}

// negativeArg matches pflag's complaint about an argument like -5.
var negativeArg = regexp.MustCompile(`unknown shorthand flag: '[0-9]' in (-[0-9][0-9.]*)$`)

// flagError makes a flag error a usage error, and says plainly that a
// negative number is not an amount (pflag takes -5 for a flag).
func flagError(c *cobra.Command, err error) error {
	if m := negativeArg.FindStringSubmatch(err.Error()); m != nil {
		return usageError{fmt.Errorf("amount %s: amounts are whole minor units from 1 to %d; there are no negative amounts (withdraw instead of depositing less)", m[1], engine.MaxAmount)}
	}
	return usageError{err}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// connection is where bankctl goes and as whom: --endpoints and the TLS
// flags (or their BANKCTL_ twins) when given. Without TLS flags, the dev
// cluster that bankctl dev up started lends its admin's certificate to
// calls to its own nodes (and its endpoints, when none are given); else
// plain HTTP.
func (a *app) connection() ([]string, *tls.Config, error) {
	endpoints, files := strings.Split(a.endpoints, ","), a.tls
	given := a.flags.Changed("endpoints") || os.Getenv("BANKCTL_ENDPOINTS") != ""
	if dir := findDevDir(); dir != "" && files == (tlsconf.Files{}) {
		if st, err := devcluster.ReadState(dir); err == nil && (!given || within(endpoints, st.URLs())) {
			if !given {
				endpoints = st.URLs()
			}
			if f := devcluster.AdminFiles(dir); fileExists(f.CA) {
				files = f
			}
		}
	}
	if files == (tlsconf.Files{}) {
		return endpoints, nil, nil
	}
	if files.CA == "" {
		return nil, nil, usageError{errors.New("--cert needs --cacert (or BANKCTL_CACERT): the CA bundle the nodes chain to")}
	}
	mat, err := tlsconf.Load(files)
	if err != nil {
		return nil, nil, usageError{err}
	}
	return endpoints, mat.Client(nil), nil
}

// within reports whether every endpoint (host:port or URL) is one of
// urls.
func within(endpoints, urls []string) bool {
	hosts := map[string]bool{}
	for _, u := range urls {
		hosts[hostPort(u)] = true
	}
	for _, e := range endpoints {
		if !hosts[hostPort(e)] {
			return false
		}
	}
	return true
}

func hostPort(e string) string {
	e = strings.TrimSpace(e)
	if i := strings.Index(e, "://"); i >= 0 {
		e = e[i+3:]
	}
	return strings.TrimRight(e, "/")
}

// api returns the cluster client, made on first use.
func (a *app) api() (*client.Client, error) {
	if a.client == nil {
		endpoints, tlsCfg, err := a.connection()
		if err != nil {
			return nil, err
		}
		c, err := client.New(endpoints, tlsCfg)
		if err != nil {
			return nil, usageError{fmt.Errorf("--endpoints: %w", err)}
		}
		if a.attemptTimeout <= 0 {
			return nil, usageError{fmt.Errorf("--attempt-timeout %v: give a positive duration", a.attemptTimeout)}
		}
		c.AttemptTimeout = a.attemptTimeout
		if c.Token, err = a.bearer(); err != nil {
			return nil, err
		}
		c.Waiting = func(why string, left time.Duration) {
			fmt.Fprintf(a.stderr, "%s; %v left\n", why, left)
		}
		a.client = c
	}
	return a.client, nil
}

// bearer is the token to send: --token, else BANKCTL_TOKEN.
func (a *app) bearer() (string, error) {
	tok := a.token
	if tok == "" {
		tok = os.Getenv("BANKCTL_TOKEN")
	}
	if tok != "" && !wire.WellFormedToken(tok) {
		return "", usageError{errors.New("the token (--token or BANKCTL_TOKEN) is not a zkbank token: zkb_ and 43 characters")}
	}
	return tok, nil
}

func (a *app) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), a.timeout)
}

// jsonOutput decides the output format.
func (a *app) jsonOutput() (bool, error) {
	switch a.output {
	case "json":
		return true, nil
	case "table":
		return false, nil
	case "":
		f, ok := a.stdout.(*os.File)
		return !ok || !term.IsTerminal(int(f.Fd())), nil
	}
	return false, usageError{fmt.Errorf("-o %q: use table or json", a.output)}
}

// readQuery is the consistency query string for reads.
func (a *app) readQuery() (string, error) {
	switch a.consistency {
	case "local", "":
		return "", nil
	case "linearizable":
		return "consistency=linearizable", nil
	}
	return "", usageError{fmt.Errorf("--consistency %q: use local or linearizable", a.consistency)}
}
