package inspect

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/deadletter/deadletter/core"
)

// Filter selects dead letter entries. An entry matches when it meets every
// condition that is set; the zero Filter matches every entry.
type Filter struct {
	// Handler matches entries of the handler with this name.
	Handler string

	// EventType matches entries of events of this type.
	EventType string

	// ErrorGroup matches entries whose GroupKey is this key, as listed by
	// Summarize.
	ErrorGroup string

	// FailedBefore matches entries dead-lettered before this time, for
	// "older than 1h".
	FailedBefore time.Time

	// FailedAfter matches entries dead-lettered after this time, for
	// "newer than 1h".
	FailedAfter time.Time

	// IDs matches only these entries. Select reads them one by one instead
	// of walking the DLQ.
	IDs []string
}

// IsZero reports whether f sets no condition and so matches every entry.
func (f Filter) IsZero() bool {
	return f.Handler == "" && f.EventType == "" && f.ErrorGroup == "" &&
		f.FailedBefore.IsZero() && f.FailedAfter.IsZero() && len(f.IDs) == 0
}

// Match reports whether e meets every condition of f.
func (f Filter) Match(e core.Entry) bool {
	switch {
	case f.Handler != "" && e.Handler != f.Handler:
		return false
	case f.EventType != "" && e.EventType != f.EventType:
		return false
	case !f.FailedBefore.IsZero() && !e.FailedAt.Before(f.FailedBefore):
		return false
	case !f.FailedAfter.IsZero() && !e.FailedAt.After(f.FailedAfter):
		return false
	case len(f.IDs) > 0 && !slices.Contains(f.IDs, e.ID):
		return false
	case f.ErrorGroup != "" && GroupKey(e.Handler, e.Error) != f.ErrorGroup:
		return false
	}
	return true
}

// Selection is the outcome of Select.
type Selection struct {
	// Entries are the matching entries, oldest first, without their
	// EventData so that a large selection stays small in memory.
	Entries []core.Entry

	// Missing lists the ids of Filter.IDs that the DLQ does not hold.
	Missing []string
}

// Select returns the entries that match f, oldest first, at most limit of
// them (0 means no limit). With a limit it returns the oldest matches.
//
// It walks the whole DLQ in pages of pageSize, keeping the matches without
// their payloads; with Filter.IDs it reads only those entries.
func Select(ctx context.Context, dlq core.DLQ, f Filter, limit, pageSize int) (Selection, error) {
	if limit < 0 {
		return Selection{}, fmt.Errorf("%w: select dlq entries: limit %d is negative", core.ErrInvalidConfig, limit)
	}
	if len(f.IDs) > 0 {
		return selectIDs(ctx, dlq, f, limit)
	}

	var matches []core.Entry
	err := Walk(ctx, dlq, core.ListOptions{Limit: pageSize}, func(e core.Entry) (bool, error) {
		if !f.Match(e) {
			return true, nil
		}
		e.EventData = nil
		matches = append(matches, e)
		// Walking goes newest first, so with a limit only the last
		// matches seen, the oldest, are kept.
		if limit > 0 && len(matches) > 2*limit {
			matches = slices.Delete(matches, 0, len(matches)-limit)
		}
		return true, nil
	})
	if err != nil {
		return Selection{}, fmt.Errorf("select dlq entries: %w", err)
	}

	if limit > 0 && len(matches) > limit {
		matches = matches[len(matches)-limit:]
	}
	slices.Reverse(matches)
	return Selection{Entries: matches}, nil
}

func selectIDs(ctx context.Context, dlq core.DLQ, f Filter, limit int) (Selection, error) {
	var sel Selection
	for _, id := range f.IDs {
		e, err := dlq.Get(ctx, id)
		if errors.Is(err, core.ErrEntryNotFound) {
			sel.Missing = append(sel.Missing, id)
			continue
		}
		if err != nil {
			return Selection{}, fmt.Errorf("select dlq entries: %w", err)
		}
		if !f.Match(e) {
			continue
		}
		e.EventData = nil
		sel.Entries = append(sel.Entries, e)
	}

	slices.SortStableFunc(sel.Entries, func(a, b core.Entry) int { return a.FailedAt.Compare(b.FailedAt) })
	if limit > 0 && len(sel.Entries) > limit {
		sel.Entries = sel.Entries[:limit]
	}
	return sel, nil
}
