package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/deadletter/deadletter/config"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/inspect"
)

// dlqOptions are the flags shared by the dlq subcommands.
type dlqOptions struct {
	broker brokerOptions
	json   bool
}

func newDLQCommand(stdout, stderr io.Writer) *cobra.Command {
	opts := &dlqOptions{}
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect, replay and delete dead letter entries",
		// Without RunE cobra prints the help and exits 0 for a mistyped
		// subcommand, which a script would take for success.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q for %q; see %s --help", args[0], cmd.CommandPath(), cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
	opts.broker.addFlags(cmd.PersistentFlags())
	cmd.PersistentFlags().BoolVar(&opts.json, "json", false, "print JSON for scripts instead of tables")

	cmd.AddCommand(
		newStatsCommand(opts, stdout, stderr),
		newListCommand(opts, stdout, stderr),
		newShowCommand(opts, stdout, stderr),
		newReplayCommand(opts, stdout, stderr),
		newDeleteCommand(opts, stdout, stderr),
	)
	return cmd
}

// withBroker reads the configuration, opens the broker, runs fn and closes
// the broker.
func withBroker(ctx context.Context, opts brokerOptions, stderr io.Writer, fn func(*broker) error) error {
	cfg, err := opts.load()
	if err != nil {
		return err
	}
	b, err := openBroker(ctx, cfg, quietLogger(stderr), stderr, true)
	if err != nil {
		return err
	}
	defer b.Close()
	return fn(b)
}

func newStatsCommand(opts *dlqOptions, stdout, stderr io.Writer) *cobra.Command {
	window := inspect.DefaultWindow
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Count the entries by event type, handler and error group",
		Long: "stats prints the number of entries and of entries dropped at the size cap, then counts\n" +
			"the newest --window entries by event type, by handler and by error group. An error group\n" +
			"is one handler's failures whose messages differ only in ids, numbers and times; pass its\n" +
			"key to replay or delete with --error-group.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if window < -1 || window == 0 {
				return fmt.Errorf("invalid --window %d: use a positive count, or -1 for every entry", window)
			}
			return withBroker(cmd.Context(), opts.broker, stderr, func(b *broker) error {
				s, err := inspect.Summarize(cmd.Context(), b.dlq(), inspect.SummaryOptions{Window: window})
				if err != nil {
					return err
				}
				if opts.json {
					return writeJSON(stdout, struct {
						Source string `json:"source"`
						inspect.Summary
					}{b.source, s})
				}
				return printStats(stdout, b.source, s)
			})
		},
	}
	cmd.Flags().IntVar(&window, "window", window, "number of newest entries to count; -1 counts every entry")
	return cmd
}

func printStats(w io.Writer, source string, s inspect.Summary) error {
	fmt.Fprintf(w, "%s: %d entries, %d dropped at the size cap\n", source, s.Total, s.Dropped)
	if s.Total == 0 {
		return nil
	}
	if int64(s.Scanned) < s.Total {
		fmt.Fprintf(w, "counts below cover the newest %d entries (--window)\n", s.Scanned)
	}
	fmt.Fprintf(w, "newest failure %s, oldest counted %s\n\n", formatTime(s.Newest), formatTime(s.Oldest))

	if err := printCounts(w, "EVENT TYPE", s.ByEventType); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if err := printCounts(w, "HANDLER", s.ByHandler); err != nil {
		return err
	}

	fmt.Fprintln(w)
	t := newTable(w)
	fmt.Fprintln(t, "ERROR GROUP\tHANDLER\tENTRIES\tEVENT TYPES\tERROR")
	for _, g := range s.Groups {
		fmt.Fprintf(t, "%s\t%s\t%d\t%s\t%s\n", g.Key, g.Handler, g.Count, strings.Join(g.EventTypes, ","), g.Error)
	}
	return t.Flush()
}

func printCounts(w io.Writer, title string, counts []inspect.Count) error {
	t := newTable(w)
	fmt.Fprintf(t, "%s\tENTRIES\n", title)
	for _, c := range counts {
		fmt.Fprintf(t, "%s\t%d\n", c.Name, c.Count)
	}
	return t.Flush()
}

type listOptions struct {
	limit     int
	before    string
	replayed  bool
	handler   string
	eventType string
}

func newListCommand(opts *dlqOptions, stdout, stderr io.Writer) *cobra.Command {
	lo := listOptions{limit: 20}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the newest entries, without their event data",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if lo.limit < 1 {
				return fmt.Errorf("invalid --limit %d: it must be at least 1", lo.limit)
			}
			return withBroker(cmd.Context(), opts.broker, stderr, func(b *broker) error {
				return runList(cmd.Context(), b, lo, opts.json, stdout, func(before string) string {
					return nextPageHint(cmd, before)
				})
			})
		},
	}
	flags := cmd.Flags()
	flags.IntVar(&lo.limit, "limit", lo.limit, "number of entries to list")
	flags.StringVar(&lo.before, "before", "", "list entries older than this id, for the next page")
	flags.BoolVar(&lo.replayed, "replayed", false, "list the replayed entries instead of the DLQ")
	flags.StringVar(&lo.handler, "handler", "", "list only entries of this handler")
	flags.StringVar(&lo.eventType, "event-type", "", "list only entries of this event type")
	return cmd
}

// runList prints a page of entries. nextPage returns the command that lists
// the page after the entry with the given id.
func runList(ctx context.Context, b *broker, lo listOptions, asJSON bool, stdout io.Writer,
	nextPage func(before string) string) error {
	filter := inspect.Filter{Handler: lo.handler, EventType: lo.eventType}
	var entries []core.Entry
	more := false
	err := inspect.Walk(ctx, b.dlq(), core.ListOptions{Before: lo.before, Replayed: lo.replayed},
		func(e core.Entry) (bool, error) {
			if !filter.Match(e) {
				return true, nil
			}
			if len(entries) == lo.limit {
				more = true
				return false, nil
			}
			entries = append(entries, e)
			return true, nil
		})
	if err != nil {
		return fmt.Errorf("list %s: %w", b.source, err)
	}

	if asJSON {
		out := make([]map[string]any, len(entries))
		for i, e := range entries {
			out[i] = entryJSON(e, false)
		}
		return writeJSON(stdout, out)
	}
	if len(entries) == 0 {
		fmt.Fprintf(stdout, "no entries in %s\n", listedStore(b, lo.replayed))
		return nil
	}

	now := time.Now()
	t := newTable(stdout)
	fmt.Fprintln(t, "ID\tFAILED AT\tAGE\tEVENT TYPE\tHANDLER\tATTEMPTS\tREPLAYS\tERROR")
	for _, e := range entries {
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", e.ID, formatTime(e.FailedAt), formatAge(e.FailedAt, now),
			inspect.EventTypeName(e), e.Handler, e.Attempts, e.ReplayCount, firstLine(e.Error, 60))
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if more {
		fmt.Fprintf(stdout, "more: %s\n", nextPage(entries[len(entries)-1].ID))
	}
	return nil
}

func listedStore(b *broker, replayed bool) string {
	if replayed {
		return "the replayed store of " + b.source
	}
	return b.source
}

func newShowCommand(opts *dlqOptions, stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one entry whole, with its event data",
		Args:  exactIDs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withBroker(cmd.Context(), opts.broker, stderr, func(b *broker) error {
				e, err := b.dlq().Get(cmd.Context(), args[0])
				if errors.Is(err, core.ErrEntryNotFound) {
					return fmt.Errorf("no entry %q in %s; it may have been replayed or deleted (see deadletter dlq list)",
						args[0], b.source)
				}
				if err != nil {
					return err
				}
				if opts.json {
					return writeJSON(stdout, entryJSON(e, true))
				}
				return printEntry(stdout, e)
			})
		},
	}
}

// exactIDs accepts n arguments, with a one-line error otherwise.
func exactIDs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %d entry id, got %d; see deadletter dlq list for ids",
				cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}

func printEntry(w io.Writer, e core.Entry) error {
	t := newTable(w)
	fmt.Fprintf(t, "id\t%s\n", e.ID)
	fields := e.Fields()
	for i := 0; i+1 < len(fields); i += 2 {
		name, value := fields[i], fields[i+1]
		if name == core.FieldEventData || name == core.FieldError {
			continue
		}
		fmt.Fprintf(t, "%s\t%s\n", name, printable(value))
	}
	fmt.Fprintf(t, "error_group\t%s\n", inspect.GroupKey(e.Handler, e.Error))
	if err := t.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nerror:\n%s\n%s\nevent_data:\n", printable(e.Error), cutNote(len(e.Error), e.ID))
	return writeIndented(w, e.EventData, e.ID)
}

// writeIndented prints data as indented JSON, or as it is when it is not
// JSON, escaped and cut by printable.
func writeIndented(w io.Writer, data []byte, id string) error {
	text := string(data)
	var indented bytes.Buffer
	if len(data) <= maxShownBytes && json.Indent(&indented, data, "", "  ") == nil {
		text = indented.String()
	}
	_, err := fmt.Fprintf(w, "%s\n%s", printable(text), cutNote(len(data), id))
	return err
}

// nextPageHint returns the command line that lists the page after the
// entry before: cmd's path with every flag the user gave, except --before
// and --json, so that the next page comes from the same broker and
// selection. Secret flags are left out and URLs are redacted as
// config.ServerURL prints them, hiding passwords and NATS tokens, since
// the hint is printed on the terminal.
func nextPageHint(cmd *cobra.Command, before string) string {
	parts := []string{cmd.CommandPath()}
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if f.Name == "before" || f.Name == "json" {
			return
		}
		value := f.Value.String()
		if value == config.Secret("secret").String() {
			return
		}
		if f.Value.Type() == "bool" {
			if value == "true" {
				parts = append(parts, "--"+f.Name)
			} else {
				parts = append(parts, "--"+f.Name+"=false")
			}
			return
		}
		if strings.Contains(value, "://") {
			value = config.ServerURL(value).String()
		}
		parts = append(parts, "--"+f.Name, shellQuote(value))
	})
	parts = append(parts, "--before", before)
	return strings.Join(parts, " ")
}

// shellQuote quotes s for a POSIX shell when it holds anything beyond
// letters, digits and the punctuation of ids, URLs and paths.
func shellQuote(s string) string {
	plain := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.,:/@=+%", r))
	}) < 0
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
