package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/peterh/liner"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func (a *app) shellCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "shell",
		Short: "Interactive prompt for the same commands (reads a pipe too)",
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
		args = []string{"--help"}
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
	ln.SetCompleter(func(line string) []string { return completeTop(a, line) })
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

func completeTop(a *app, line string) []string {
	if strings.Contains(line, " ") {
		return nil
	}
	var out []string
	for _, c := range a.rootCommand().Commands() {
		if strings.HasPrefix(c.Name(), line) {
			out = append(out, c.Name()+" ")
		}
	}
	return append(out, filterPrefix([]string{"exit", "help"}, line)...)
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
