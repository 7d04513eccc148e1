package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/inspect"
)

// newTable returns a writer that aligns tab-separated columns. Flush it
// when done.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newLogger returns a text logger on w at level.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level:       level,
		ReplaceAttr: core.ReplaceLevelName,
	}))
}

// quietLogger logs only errors, for commands whose output is their result.
func quietLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level:       slog.LevelError,
		ReplaceAttr: core.ReplaceLevelName,
	}))
}

// formatTime prints a time in UTC to the second, for tables.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// formatAge prints how long ago t was, rounded for people: 45s, 12m, 3h, 2d.
func formatAge(t time.Time, now time.Time) string {
	d := now.Sub(t)
	switch {
	case t.IsZero():
		return "-"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// firstLine returns the first line of s, cut to n characters.
func firstLine(s string, n int) string {
	line, _, _ := strings.Cut(s, "\n")
	if r := []rune(line); len(r) > n {
		return string(r[:n-3]) + "..."
	}
	return line
}

// entryJSON is an entry in JSON output: its flat fields under their DLQ
// names, with event_data as JSON when it is valid JSON.
func entryJSON(e core.Entry, withData bool) map[string]any {
	fields := e.Fields()
	out := make(map[string]any, len(fields)/2+2)
	out["id"] = e.ID
	for i := 0; i+1 < len(fields); i += 2 {
		out[fields[i]] = fields[i+1]
	}
	out[core.FieldAttempts] = e.Attempts
	out[core.FieldReplayCount] = e.ReplayCount
	out["error_group"] = inspect.GroupKey(e.Handler, e.Error)
	delete(out, core.FieldEventData)
	if withData {
		if json.Valid(e.EventData) {
			out[core.FieldEventData] = json.RawMessage(e.EventData)
		} else {
			out[core.FieldEventData] = string(e.EventData)
		}
	}
	return out
}

// isTerminal reports whether f is a terminal; /dev/null, a pipe or a file
// is not.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

// progress prints "verb done/total" on one terminal line, at most ten times
// a second. It prints nothing when w is not a terminal.
type progress struct {
	w     io.Writer
	verb  string
	on    bool
	last  time.Time
	shown bool
}

func newProgress(w io.Writer, verb string) *progress {
	return &progress{w: w, verb: verb, on: isTerminal(w)}
}

func (p *progress) update(done, total int) {
	if !p.on || (time.Since(p.last) < 100*time.Millisecond && done < total) {
		return
	}
	p.last = time.Now()
	p.shown = true
	fmt.Fprintf(p.w, "\r%s %d/%d", p.verb, done, total)
}

// finish ends the progress line.
func (p *progress) finish() {
	if p.shown {
		fmt.Fprintln(p.w)
	}
}

// confirm prints a yes/no question on stderr and reads the reply from stdin.
// It fails when stdin is not a terminal, because nobody could reply.
func confirm(stdin io.Reader, stderr io.Writer, question string) (bool, error) {
	if !isTerminal(stdin) {
		return false, fmt.Errorf("%s: no terminal to confirm on; pass --yes to confirm", question)
	}
	fmt.Fprintf(stderr, "%s [y/N] ", question)
	answer, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && answer == "" {
		return false, fmt.Errorf("read confirmation: %w", err)
	}
	answer = strings.ToLower(strings.TrimSpace(answer))
	return answer == "y" || answer == "yes", nil
}

// parseAge parses a duration such as 90m, 2h or 3d; Go's durations lack
// days.
func parseAge(flag, value string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(value, "d"); ok {
		if n, err := strconv.ParseFloat(days, 64); err == nil && n >= 0 {
			return time.Duration(n * float64(24*time.Hour)), nil
		}
	} else if d, err := time.ParseDuration(value); err == nil && d >= 0 {
		return d, nil
	}
	return 0, fmt.Errorf("invalid %s %q: use a duration such as 30m, 2h or 3d", flag, value)
}
