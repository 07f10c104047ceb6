package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/zkbank/zkbank/cmd/internal/wire"
)

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// showJSON prints v as JSON when that is the output format; done says
// whether it did (or failed to decide), so the caller returns err.
func (a *app) showJSON(v any) (done bool, err error) {
	asJSON, err := a.jsonOutput()
	if err != nil || !asJSON {
		return err != nil, err
	}
	return true, printJSON(a.stdout, v)
}

// table prints rows under a header, aligned.
func table(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

func accountRow(a wire.Account) []string {
	frozen := ""
	if a.Frozen {
		frozen = "frozen"
	}
	return []string{a.Account, a.Name, fmt.Sprint(a.Balance), fmt.Sprint(a.Held), fmt.Sprint(a.CreatedIndex), fmt.Sprint(a.UpdatedIndex), frozen}
}

var accountHeader = []string{"ACCOUNT", "NAME", "BALANCE", "HELD", "CREATED", "UPDATED", "STATUS"}

// show prints v as JSON, or as a table of accounts through rows.
func (a *app) show(v any, accounts ...wire.Account) error {
	if done, err := a.showJSON(v); done {
		return err
	}
	rows := make([][]string, len(accounts))
	for i, acc := range accounts {
		rows[i] = accountRow(acc)
	}
	table(a.stdout, accountHeader, rows)
	return nil
}

// progress draws a bar on stderr when it is a terminal; otherwise it
// prints a line every few seconds so that logs show movement.
type progress struct {
	w       io.Writer
	what    string
	total   int
	tty     bool
	started time.Time
	last    time.Time
}

func newProgress(w io.Writer, what string, total int) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, what: what, total: total, tty: ok && term.IsTerminal(int(f.Fd())), started: time.Now()}
}

func (p *progress) update(done int) {
	now := time.Now()
	if done < p.total && now.Sub(p.last) < map[bool]time.Duration{true: 100 * time.Millisecond, false: 5 * time.Second}[p.tty] {
		return
	}
	p.last = now
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(done) / float64(p.total)
	}
	rate := float64(done) / max(now.Sub(p.started).Seconds(), 0.001)
	if p.tty {
		const width = 30
		fill := int(pct / 100 * width)
		fmt.Fprintf(p.w, "\r%s [%s%s] %d/%d %.0f%% %.0f/s ", p.what, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), done, p.total, pct, rate)
		if done >= p.total {
			fmt.Fprintln(p.w)
		}
		return
	}
	fmt.Fprintf(p.w, "%s: %d/%d (%.0f%%, %.0f/s)\n", p.what, done, p.total, pct, rate)
}
