package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/inspect"
)

// deleteBatch is the number of ids removed per call to DLQ.Delete.
const deleteBatch = 100

type deleteOptions struct {
	selection selectionOptions
	yes       bool
}

func newDeleteCommand(opts *dlqOptions, stdout, stderr io.Writer) *cobra.Command {
	do := deleteOptions{}
	cmd := &cobra.Command{
		Use:   "delete [ID...]",
		Short: "Delete entries for good, after a confirmation",
		Long: "delete removes the selected entries from the DLQ; their events are not delivered again.\n" +
			"It asks for a confirmation on the terminal unless --yes is given, and without a terminal\n" +
			"it refuses. Use --dry-run first to see what it would delete.",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDelete(cmd, opts, do, args, stdout, stderr)
		},
	}
	do.selection.addFlags(cmd.Flags(), "delete")
	cmd.Flags().BoolVar(&do.yes, "yes", false, "delete without asking for a confirmation")
	return cmd
}

func runDelete(cmd *cobra.Command, opts *dlqOptions, do deleteOptions, args []string, stdout, stderr io.Writer) error {
	filter, err := do.selection.filter(args, time.Now().UTC())
	if err != nil {
		return err
	}

	return withBroker(cmd.Context(), opts.broker, stderr, func(b *broker) error {
		sel, err := inspect.Select(cmd.Context(), b.dlq(), filter, do.selection.limit, 0)
		if err != nil {
			return err
		}

		if do.selection.dryRun || len(sel.Entries) == 0 {
			if err := reportDelete(stdout, opts.json, b.source, sel, 0, true); err != nil {
				return err
			}
			return unknownIDs(b.source, sel.Missing)
		}
		if !do.yes {
			ok, err := confirm(cmd.InOrStdin(), stderr,
				fmt.Sprintf("delete %d entries from %s for good", len(sel.Entries), b.source))
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("nothing deleted: not confirmed")
			}
		}

		deleted, err := deleteEntries(cmd.Context(), b.dlq(), sel.Entries, newProgress(stderr, "deleted"))
		if reportErr := reportDelete(stdout, opts.json, b.source, sel, deleted, false); reportErr != nil {
			return reportErr
		}
		if err != nil {
			return err
		}
		return unknownIDs(b.source, sel.Missing)
	})
}

// deleteEntries removes entries in batches and returns how many the DLQ
// removed.
func deleteEntries(ctx context.Context, dlq core.DLQ, entries []core.Entry, bar *progress) (int, error) {
	defer bar.finish()
	deleted := 0
	for start := 0; start < len(entries); start += deleteBatch {
		end := min(start+deleteBatch, len(entries))
		ids := make([]string, 0, end-start)
		for _, e := range entries[start:end] {
			ids = append(ids, e.ID)
		}
		n, err := dlq.Delete(ctx, ids...)
		deleted += n
		if err != nil {
			return deleted, fmt.Errorf("delete entries: %d of %d done: %w", deleted, len(entries), err)
		}
		bar.update(end, len(entries))
	}
	return deleted, nil
}

func reportDelete(w io.Writer, asJSON bool, source string, sel inspect.Selection, deleted int, dryRun bool) error {
	if asJSON {
		return writeJSON(w, map[string]any{
			"dry_run":  dryRun,
			"selected": entriesJSON(sel.Entries),
			"deleted":  deleted,
			"missing":  append([]string{}, sel.Missing...),
		})
	}
	switch {
	case len(sel.Entries) == 0 && len(sel.Missing) > 0:
		// The error names the ids.
	case len(sel.Entries) == 0:
		fmt.Fprintf(w, "no entries of %s match the selection\n", source)
	case dryRun:
		if err := printSelection(w, sel.Entries); err != nil {
			return err
		}
		fmt.Fprintf(w, "dry run: would delete %d entries of %s\n", len(sel.Entries), source)
	default:
		fmt.Fprintf(w, "deleted %d entries of %s\n", deleted, source)
	}
	return nil
}
