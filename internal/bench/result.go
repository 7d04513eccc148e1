package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Result is the measurement of one case.
type Result struct {
	// Case is the case's name, as passed to Run.
	Case string

	// Title describes the case in a few words.
	Title string

	// Count is the number of events handled, or of DLQ entries replayed or
	// listed.
	Count int

	// Elapsed runs from the first publish, or the first DLQ call, to the
	// last event handled or entry processed.
	Elapsed time.Duration

	// P50 and P99 are end-to-end latencies, from publish to handler; zero
	// where the case measures no latency.
	P50, P99 time.Duration

	// PeakHeap and PeakRSS are the process's peak heap in use and resident
	// set size during the case, in bytes. PeakRSS is 0 where it cannot be
	// read.
	PeakHeap, PeakRSS uint64

	// QuarterHeap holds the peak heap in use during each quarter of the
	// case's progress, for the memory cases; nil for the others.
	QuarterHeap []uint64

	// Notes add what the columns do not show, such as per-quarter peaks.
	Notes []string

	// Skipped gives the reason the case did not run; the other fields are
	// then zero.
	Skipped string
}

// Rate returns the count per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Count) / r.Elapsed.Seconds()
}

// WriteTable writes results as a Markdown table, then their notes.
func WriteTable(w io.Writer, results []Result) {
	fmt.Fprintln(w, "| case | what | count | seconds | per second | p50 | p99 | peak heap | peak RSS |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range results {
		if r.Skipped != "" {
			fmt.Fprintf(w, "| %s | %s | skipped: %s | | | | | | |\n", r.Case, r.Title, r.Skipped)
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %d | %.2f | %s | %s | %s | %s | %s |\n",
			r.Case, r.Title, r.Count, r.Elapsed.Seconds(), formatRate(r.Rate()),
			formatLatency(r.P50), formatLatency(r.P99), formatBytes(r.PeakHeap), formatBytes(r.PeakRSS))
	}

	var notes []string
	for _, r := range results {
		for _, note := range r.Notes {
			notes = append(notes, fmt.Sprintf("- %s: %s", r.Case, note))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, strings.Join(notes, "\n"))
	}
}

func formatRate(rate float64) string {
	return fmt.Sprintf("%.0f", rate)
}

func formatLatency(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func formatBytes(n uint64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
