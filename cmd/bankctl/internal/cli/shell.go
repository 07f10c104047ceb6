package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/peterh/liner"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/zkbank/zkbank/cmd/internal/wire"
	"github.com/zkbank/zkbank/engine"
)

func (a *app) shellCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "shell",
		Example: "  bankctl shell\n  printf 'account list\\ncluster status\\n' | bankctl shell",
		Short:   "Interactive prompt for the same commands (reads a pipe too)",
		Long: `An interactive prompt with history (~/.bankctl_history) and line editing.
Type the same commands as on the command line without "bankctl", e.g.
"transfer 1001 1002 500"; "help" lists them, "exit" or Ctrl-D leaves.
When stdin is not a terminal, it reads one command per line and stops at
the end of input; the exit code is that of the last failing command.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				return a.interactive()
			}
			return a.script(a.stdin)
		},
	}
}

// runLine runs one shell line as a bankctl command, keeping the shell's
// global flags and its cluster client.
func (a *app) runLine(line string) (exit int, quit bool) {
	args, err := splitArgs(line)
	if err != nil {
		fmt.Fprintln(a.stderr, "Error:", err)
		return ExitUsage, false
	}
	switch {
	case len(args) == 0:
		return ExitOK, false
	case args[0] == "exit" || args[0] == "quit":
		return ExitOK, true
	case args[0] == "shell":
		fmt.Fprintln(a.stderr, "Error: already in the shell")
		return ExitUsage, false
	case args[0] == "help" && len(args) == 1:
		a.shellHelp()
		return ExitOK, false
	case args[0] == "help":
		args = append(args[1:], "--help")
	}
	sub := *a
	root := sub.rootCommand()
	// The shell's own global flags first; the line's flags come later and win.
	globals := []string{"--endpoints", a.endpoints, "--output", a.output, "--timeout", a.timeout.String(), "--consistency", a.consistency}
	root.SetArgs(append(globals, args...))
	if err := root.Execute(); err != nil {
		fmt.Fprintln(a.stderr, "Error:", err)
		a.client = sub.client
		return exitCode(err), false
	}
	a.client = sub.client
	return ExitOK, false
}

func (a *app) interactive() error {
	ln := liner.NewLiner()
	defer ln.Close()
	ln.SetCtrlCAborts(true)
	history := ""
	if home, err := os.UserHomeDir(); err == nil {
		history = filepath.Join(home, ".bankctl_history")
		if f, err := os.Open(history); err == nil {
			ln.ReadHistory(f)
			f.Close()
		}
	}
	ln.SetCompleter(func(line string) []string { return a.complete(line) })
	fmt.Fprintln(a.stdout, `bankctl shell: "help" lists commands, "exit" or Ctrl-D leaves.`)
	for {
		line, err := ln.Prompt("bank> ")
		if errors.Is(err, liner.ErrPromptAborted) {
			continue
		}
		if err != nil { // io.EOF: Ctrl-D
			break
		}
		if strings.TrimSpace(line) != "" {
			ln.AppendHistory(line)
		}
		if _, quit := a.runLine(line); quit {
			break
		}
	}
	if history != "" {
		if f, err := os.Create(history); err == nil {
			ln.WriteHistory(f)
			f.Close()
		}
	}
	return nil
}

// script runs commands from a pipe, one per line; blank lines and lines
// starting with # are skipped.
func (a *app) script(r io.Reader) error {
	sc := bufio.NewScanner(r)
	last := ExitOK
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		code, quit := a.runLine(line)
		if code != ExitOK {
			last = code
		}
		if quit {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if last != ExitOK {
		return exitError(last)
	}
	return nil
}

// exitError carries a shell script's exit code out through Execute.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("a command failed (exit %d)", int(e)) }

// shellHelp is the shell's own help.
func (a *app) shellHelp() {
	var rows [][]string
	for _, c := range a.rootCommand().Commands() {
		if c.IsAvailableCommand() && c.Name() != "shell" && c.Name() != "completion" {
			rows = append(rows, []string{c.Name(), c.Short})
		}
	}
	fmt.Fprintln(a.stdout, `Commands (as on the command line, without "bankctl"):`)
	table(a.stdout, []string{"  COMMAND", "WHAT"}, prefixRows(rows, "  "))
	fmt.Fprintln(a.stdout, `
  help COMMAND     that command's help, e.g. "help transfer"
  exit, Ctrl-D     leave

Tab completes commands, flags and account numbers; the arrow keys walk
the history (~/.bankctl_history). The shell's flags (--endpoints,
--timeout, -o, ...) hold for every line; a line's own flags win.`)
}

func prefixRows(rows [][]string, p string) [][]string {
	for i := range rows {
		rows[i][0] = p + rows[i][0]
	}
	return rows
}

// accountArgs are the commands whose arguments are account numbers.
var accountArgs = map[string]bool{"deposit": true, "withdraw": true, "transfer": true, "get": true, "delete": true, "rename": true, "history": true}

// complete offers what may come next on a shell line: a subcommand, a
// flag of the command typed so far, or an account number.
func (a *app) complete(line string) []string {
	words, err := splitArgs(line)
	if err != nil {
		return nil
	}
	partial := ""
	if len(words) > 0 && !strings.HasSuffix(line, " ") {
		partial, words = words[len(words)-1], words[:len(words)-1]
	}
	head := line[:len(line)-len(partial)]
	cmd := a.rootCommand()
	for _, w := range words {
		if sub, _, err := cmd.Find([]string{w}); err == nil && sub != cmd && !strings.HasPrefix(w, "-") {
			cmd = sub
		}
	}
	var opts []string
	switch {
	case strings.HasPrefix(partial, "-"):
		cmd.InheritedFlags().VisitAll(func(f *pflag.Flag) { opts = append(opts, "--"+f.Name) })
		cmd.LocalFlags().VisitAll(func(f *pflag.Flag) { opts = append(opts, "--"+f.Name) })
	case cmd.HasAvailableSubCommands():
		for _, c := range cmd.Commands() {
			if c.IsAvailableCommand() && c.Name() != "shell" {
				opts = append(opts, c.Name())
			}
		}
		if len(words) == 0 {
			opts = append(opts, "exit", "help")
		}
	case accountArgs[cmd.Name()]:
		opts = a.accountsStartingWith(partial)
	}
	var out []string
	for _, o := range filterPrefix(opts, partial) {
		out = append(out, head+o+" ")
	}
	return out
}

// accountsStartingWith asks the cluster, briefly, for account numbers
// that start with prefix (at most a page's worth).
func (a *app) accountsStartingWith(prefix string) []string {
	c, err := a.api()
	if err != nil {
		return nil
	}
	after := ""
	if len(prefix) > 1 {
		after = prefix[:len(prefix)-1]
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var page wire.AccountList
	q := url.Values{"limit": {"1000"}}
	if after != "" && engine.ValidAccountNumber(after) {
		q.Set("after", after)
	}
	if _, err := c.Do(ctx, "GET", "/v1/accounts?"+q.Encode(), nil, "", &page); err != nil {
		return nil
	}
	var out []string
	for _, acc := range page.Accounts {
		out = append(out, acc.Account)
	}
	return out
}

func filterPrefix(words []string, prefix string) []string {
	var out []string
	for _, w := range words {
		if strings.HasPrefix(w, prefix) {
			out = append(out, w)
		}
	}
	return out
}

// splitArgs splits a line like a POSIX shell would for simple cases:
// spaces separate words; '...' and "..." quote; \ escapes the next
// character outside single quotes.
func splitArgs(line string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, r := range line {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 || escaped {
		return nil, fmt.Errorf("unterminated quote or escape in %q", line)
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}
