package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/deadletter/deadletter/replay"
)

type replayOptions struct {
	selection          selectionOptions
	rate               float64
	workers            int
	maxReplays         int
	includeUndecodable bool
}

func newReplayCommand(opts *dlqOptions, stdout, stderr io.Writer) *cobra.Command {
	ro := replayOptions{rate: replay.DefaultRate, maxReplays: replay.DefaultMaxReplayCount,
		workers: replay.DefaultWorkers}
	cmd := &cobra.Command{
		Use:   "replay [ID...]",
		Short: "Deliver entries again to the handler that failed, and only to it",
		Long: "replay delivers each selected entry's event again to the handler named in the entry, and\n" +
			"to no other handler of the event, then moves the entry to the replayed store. Entries go\n" +
			"oldest first, at --rate per second. An entry whose event was already replayed\n" +
			"--max-replays times is refused, so an event that fails every time does not circle.\n" +
			"Entries of messages that could not be decoded are skipped unless --include-undecodable\n" +
			"is given, since they would fail straight back.\n" +
			"Running a replay again after an interruption neither loses nor repeats an entry.",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReplay(cmd, opts, ro, args, stdout, stderr)
		},
	}
	ro.selection.addFlags(cmd.Flags(), "replay")
	cmd.Flags().Float64Var(&ro.rate, "rate", ro.rate, "entries replayed per second; -1 means no limit")
	cmd.Flags().IntVar(&ro.workers, "workers", ro.workers,
		"entries replayed at once, sharing --rate; 1 replays strictly oldest first")
	cmd.Flags().IntVar(&ro.maxReplays, "max-replays", ro.maxReplays,
		"refuse entries whose event was replayed this many times already; -1 turns the guard off")
	cmd.Flags().BoolVar(&ro.includeUndecodable, "include-undecodable", false,
		"also replay entries of messages that could not be decoded, which are skipped by default")
	return cmd
}

func runReplay(cmd *cobra.Command, opts *dlqOptions, ro replayOptions, args []string, stdout, stderr io.Writer) error {
	filter, err := ro.selection.filter(args, time.Now().UTC())
	if err != nil {
		return err
	}
	if ro.workers < 1 {
		return fmt.Errorf("invalid --workers %d: use 1 or more", ro.workers)
	}
	if ro.rate == 0 || (ro.rate < 0 && ro.rate != -1) {
		return fmt.Errorf("invalid --rate %g: use a positive rate per second, or -1 for no limit", ro.rate)
	}
	if ro.maxReplays == 0 || ro.maxReplays < -1 {
		return fmt.Errorf("invalid --max-replays %d: use a positive count, or -1 to turn the guard off", ro.maxReplays)
	}

	return withBroker(cmd.Context(), opts.broker, stderr, func(b *broker) error {
		bar := newProgress(stderr, "replayed")
		res, runErr := replay.Run(cmd.Context(), replay.Config{
			DLQ:                b.dlq(),
			Filter:             filter,
			Limit:              ro.selection.limit,
			DryRun:             ro.selection.dryRun,
			Rate:               ro.rate,
			Workers:            ro.workers,
			MaxReplayCount:     ro.maxReplays,
			IncludeUndecodable: ro.includeUndecodable,
			Progress:           bar.update,
			Logger:             quietLogger(stderr),
		})
		bar.finish()

		if opts.json {
			if err := writeJSON(stdout, replayJSON(res)); err != nil {
				return err
			}
		} else {
			printReplay(stdout, b.source, res, ro.maxReplays)
		}
		if runErr != nil {
			return runErr
		}
		return unknownIDs(b.source, res.Missing)
	})
}

func replayJSON(res replay.Result) map[string]any {
	return map[string]any{
		"dry_run":     res.DryRun,
		"selected":    entriesJSON(res.Selected),
		"replayed":    res.Replayed,
		"refused":     entriesJSON(res.Refused),
		"undecodable": entriesJSON(res.Undecodable),
		"missing":     append([]string{}, res.Missing...),
		"vanished":    append([]string{}, res.Vanished...),
	}
}

func printReplay(w io.Writer, source string, res replay.Result, maxReplays int) {
	switch {
	case res.DryRun:
		if len(res.Selected) > 0 {
			_ = printSelection(w, res.Selected)
		}
		fmt.Fprintf(w, "dry run: would replay %d entries of %s\n", len(res.Selected), source)
	case len(res.Selected) == 0 && (len(res.Refused) > 0 || len(res.Undecodable) > 0):
		fmt.Fprintf(w, "replayed none of %s\n", source)
	case len(res.Selected) == 0 && len(res.Missing) > 0:
		// The error names the ids.
	default:
		fmt.Fprintf(w, "replayed %d of %d selected entries of %s to their handlers\n",
			res.Replayed, len(res.Selected), source)
	}
	if len(res.Refused) > 0 {
		fmt.Fprintf(w, "%d entries were refused by --max-replays: their events were replayed %d times already; "+
			"inspect them with deadletter dlq show ID\n", len(res.Refused), maxReplays)
	}
	if len(res.Undecodable) > 0 {
		fmt.Fprintf(w, "%d undecodable entries skipped; delete them or use --include-undecodable\n",
			len(res.Undecodable))
	}
	printVanished(w, res.Vanished)
}
