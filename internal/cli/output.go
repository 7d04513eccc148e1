package cli

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/inspect"
)

// newTable returns a writer that aligns tab-separated columns and escapes
// control characters in the cells, which hold text from outside systems
// such as error messages. Flush it when done.
func newTable(w io.Writer) table {
	return table{tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
}

// table is a tabwriter.Writer whose input is escaped for a terminal.
type table struct{ *tabwriter.Writer }

// Write escapes p with escapeControl and writes it to the tabwriter. Callers
// write whole rows or cells, so a UTF-8 sequence is never split.
func (t table) Write(p []byte) (int, error) {
	if _, err := t.Writer.Write([]byte(escapeControl(string(p)))); err != nil {
		return 0, err
	}
	return len(p), nil
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
// names, with event_data as JSON when it is valid JSON in valid UTF-8.
// Other event data is a string, with invalid UTF-8 replaced by U+FFFD, and
// its exact bytes in event_data_base64, so the output is always valid JSON.
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
		switch {
		case !utf8.Valid(e.EventData):
			out[core.FieldEventData] = strings.ToValidUTF8(string(e.EventData), "\uFFFD")
			out[core.FieldEventData+"_base64"] = base64.StdEncoding.EncodeToString(e.EventData)
		case json.Valid(e.EventData):
			out[core.FieldEventData] = json.RawMessage(e.EventData)
		default:
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

// maxShownBytes bounds each value that dlq show prints as text; --json
// prints values whole.
const maxShownBytes = 64 << 10

// printable returns s for a terminal: cut to maxShownBytes, with invalid
// UTF-8 and control characters other than newline and tab escaped as \xNN
// or \uNNNN, so that stored bytes cannot move the cursor or change colors.
func printable(s string) string {
	if len(s) > maxShownBytes {
		s = s[:maxShownBytes]
	}
	return escapeControl(s)
}

// escapeControl returns s with invalid UTF-8 and control characters other
// than newline and tab escaped as \xNN or \uNNNN.
func escapeControl(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' || r == '\t' || unicode.IsPrint(r):
			b.WriteString(s[i : i+size])
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += size
	}
	return b.String()
}

// cutNote returns the note printed after a value of n bytes that printable
// cut, or "" when it was not cut.
func cutNote(n int, id string) string {
	if n <= maxShownBytes {
		return ""
	}
	return fmt.Sprintf("... cut at %d of %d bytes; deadletter dlq show --json %s prints the whole value\n",
		maxShownBytes, n, id)
}
