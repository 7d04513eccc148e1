package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/inspect"
)

// maxRowsShown bounds the rows of a dry run's table; JSON output lists
// every entry.
const maxRowsShown = 50

// selectionOptions are the flags that select entries for replay and delete.
type selectionOptions struct {
	handler    string
	eventType  string
	errorGroup string
	olderThan  string
	newerThan  string
	ids        []string
	all        bool
	limit      int
	dryRun     bool
}

func (o *selectionOptions) addFlags(flags *pflag.FlagSet, verb string) {
	flags.StringVar(&o.handler, "handler", "", verb+" only entries of this handler")
	flags.StringVar(&o.eventType, "event-type", "", verb+" only entries of this event type")
	flags.StringVar(&o.errorGroup, "error-group", "", verb+" only entries of this error group, as listed by dlq stats")
	flags.StringVar(&o.olderThan, "older-than", "", verb+" only entries that failed longer ago than this, e.g. 2h or 3d")
	flags.StringVar(&o.newerThan, "newer-than", "", verb+" only entries that failed more recently than this, e.g. 30m")
	flags.StringSliceVar(&o.ids, "id", nil, verb+" only these entry ids (repeat the flag or separate with commas)")
	flags.BoolVar(&o.all, "all", false, verb+" every entry; needed when no other selection is given")
	flags.IntVar(&o.limit, "limit", 0, verb+" at most this many entries, the oldest first; 0 means no limit")
	flags.BoolVar(&o.dryRun, "dry-run", false, "list the selected entries and change nothing")
}

// filter turns the flags and the ids given as arguments into a filter.
func (o *selectionOptions) filter(args []string, now time.Time) (inspect.Filter, error) {
	f := inspect.Filter{
		Handler:    o.handler,
		EventType:  o.eventType,
		ErrorGroup: o.errorGroup,
		IDs:        append(append([]string{}, o.ids...), args...),
	}
	if o.olderThan != "" {
		age, err := parseAge("--older-than", o.olderThan)
		if err != nil {
			return f, err
		}
		f.FailedBefore = now.Add(-age)
	}
	if o.newerThan != "" {
		age, err := parseAge("--newer-than", o.newerThan)
		if err != nil {
			return f, err
		}
		f.FailedAfter = now.Add(-age)
	}

	switch {
	case o.limit < 0:
		return f, fmt.Errorf("invalid --limit %d: use a positive count, or 0 for no limit", o.limit)
	case f.IsZero() && !o.all:
		return f, errors.New("no entries selected: give --handler, --event-type, --error-group, " +
			"--older-than, --newer-than or ids, or --all for every entry")
	case !f.IsZero() && o.all:
		return f, errors.New("--all cannot be combined with a selection; drop --all or the selection")
	}
	return f, nil
}

// printSelection prints the selected entries as a table, at most
// maxRowsShown rows.
func printSelection(w io.Writer, entries []core.Entry) error {
	t := newTable(w)
	fmt.Fprintln(t, "ID\tFAILED AT\tEVENT TYPE\tHANDLER\tREPLAYS\tERROR GROUP\tERROR")
	for i, e := range entries {
		if i == maxRowsShown {
			fmt.Fprintf(t, "... and %d more (--json lists all)\n", len(entries)-maxRowsShown)
			break
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", e.ID, formatTime(e.FailedAt), inspect.EventTypeName(e),
			e.Handler, e.ReplayCount, inspect.GroupKey(e.Handler, e.Error), firstLine(e.Error, 50))
	}
	return t.Flush()
}

// entriesJSON returns entries for JSON output, without their event data.
func entriesJSON(entries []core.Entry) []map[string]any {
	out := make([]map[string]any, len(entries))
	for i, e := range entries {
		out[i] = entryJSON(e, false)
	}
	return out
}

// unknownIDs returns an error naming the ids given that source does not
// hold, or nil when there are none. Such an id is mistyped, or was replayed
// or deleted before the command ran.
func unknownIDs(source string, missing []string) error {
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("no entries with ids %s in %s; see deadletter dlq list for ids",
		strings.Join(missing, ", "), source)
}

// printVanished notes the selected entries that left the DLQ while the
// command ran, replayed or deleted by someone else.
func printVanished(w io.Writer, vanished []string) {
	if len(vanished) > 0 {
		fmt.Fprintf(w, "%d entries left the DLQ meanwhile, replayed or deleted elsewhere: %s\n",
			len(vanished), strings.Join(vanished, ", "))
	}
}
