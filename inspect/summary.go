package inspect

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/deadletter/deadletter/core"
)

// DefaultWindow is the number of newest entries that Summarize counts.
const DefaultWindow = 1_000

// Count is a number of entries under one name, such as a handler.
type Count struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// ErrorGroup is the entries of one handler that failed with the same
// normalised error.
type ErrorGroup struct {
	// Key selects the group in Filter.ErrorGroup.
	Key     string `json:"key"`
	Handler string `json:"handler"`

	// Error is the normalised error message.
	Error string `json:"error"`
	Count int    `json:"count"`

	// EventTypes lists the event types of the group's entries, newest
	// first.
	EventTypes []string `json:"event_types"`

	// Newest is when the group's newest entry was dead-lettered.
	Newest time.Time `json:"newest"`
}

// Summary counts the entries of a DLQ. Total and Dropped cover the whole
// DLQ; the counts by name cover the Scanned newest entries.
type Summary struct {
	// Total is the number of entries in the DLQ.
	Total int64 `json:"total"`

	// Dropped is how many entries the DLQ's size cap has removed.
	Dropped int64 `json:"dropped"`

	// Scanned is the number of newest entries counted below; it is less
	// than Total when the DLQ holds more than the window.
	Scanned int `json:"scanned"`

	// ByEventType and ByHandler count entries, largest count first.
	ByEventType []Count `json:"by_event_type"`
	ByHandler   []Count `json:"by_handler"`

	// Groups lists the error groups, largest first.
	Groups []ErrorGroup `json:"error_groups"`

	// NewestEventTypes lists each event type once, in the order of its
	// newest entry, newest first.
	NewestEventTypes []string `json:"newest_event_types"`

	// Newest and Oldest are the failure times of the newest and oldest
	// scanned entries.
	Newest time.Time `json:"newest"`
	Oldest time.Time `json:"oldest"`
}

// SummaryOptions sets how much of the DLQ Summarize reads.
type SummaryOptions struct {
	// Window is the number of newest entries counted. 0 means
	// DefaultWindow (1,000); -1 means every entry.
	Window int

	// PageSize is the number of entries read per call to List. 0 means
	// DefaultPageSize (200).
	PageSize int
}

// Summarize counts the entries of dlq by event type, handler and error
// group, over the newest opts.Window entries.
func Summarize(ctx context.Context, dlq core.DLQ, opts SummaryOptions) (Summary, error) {
	window := opts.Window
	if window == 0 {
		window = DefaultWindow
	}

	total, err := dlq.Len(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("summarize dlq: %w", err)
	}
	dropped, err := dlq.Dropped(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("summarize dlq: %w", err)
	}
	s := Summary{Total: total, Dropped: dropped}
	if total == 0 {
		return s, nil
	}

	c := newCounter()
	err = Walk(ctx, dlq, core.ListOptions{Limit: pageSize(opts.PageSize, window)}, func(e core.Entry) (bool, error) {
		c.add(e)
		return window < 0 || c.scanned < window, nil
	})
	if err != nil {
		return Summary{}, fmt.Errorf("summarize dlq: %w", err)
	}
	c.fill(&s)
	return s, nil
}

// pageSize reads no more than the window needs when the window is small.
func pageSize(requested, window int) int {
	if requested <= 0 {
		requested = DefaultPageSize
	}
	if window > 0 && window < requested {
		return window
	}
	return requested
}

type counter struct {
	scanned     int
	byEventType map[string]int
	byHandler   map[string]int
	groups      map[string]*ErrorGroup
	newestTypes []string
	newest      time.Time
	oldest      time.Time
}

func newCounter() *counter {
	return &counter{
		byEventType: map[string]int{},
		byHandler:   map[string]int{},
		groups:      map[string]*ErrorGroup{},
	}
}

// add counts e. Entries arrive newest first.
func (c *counter) add(e core.Entry) {
	if c.scanned == 0 {
		c.newest = e.FailedAt
	}
	c.oldest = e.FailedAt
	c.scanned++

	eventType := EventTypeName(e)
	if c.byEventType[eventType] == 0 {
		c.newestTypes = append(c.newestTypes, eventType)
	}
	c.byEventType[eventType]++
	c.byHandler[e.Handler]++

	key := GroupKey(e.Handler, e.Error)
	g, ok := c.groups[key]
	if !ok {
		g = &ErrorGroup{Key: key, Handler: e.Handler, Error: NormalizeError(e.Error), Newest: e.FailedAt}
		c.groups[key] = g
	}
	g.Count++
	if !slices.Contains(g.EventTypes, eventType) {
		g.EventTypes = append(g.EventTypes, eventType)
	}
}

func (c *counter) fill(s *Summary) {
	s.Scanned = c.scanned
	s.Newest, s.Oldest = c.newest, c.oldest
	s.ByEventType = sortedCounts(c.byEventType)
	s.ByHandler = sortedCounts(c.byHandler)
	s.NewestEventTypes = c.newestTypes
	for _, g := range c.groups {
		s.Groups = append(s.Groups, *g)
	}
	slices.SortFunc(s.Groups, func(a, b ErrorGroup) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), b.Newest.Compare(a.Newest), cmp.Compare(a.Key, b.Key))
	})
}

// sortedCounts returns the counts largest first, ties by name.
func sortedCounts(counts map[string]int) []Count {
	out := make([]Count, 0, len(counts))
	for name, n := range counts {
		out = append(out, Count{Name: name, Count: n})
	}
	slices.SortFunc(out, func(a, b Count) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// UnknownEventType names the event type of an entry whose message could not
// be decoded into an event.
const UnknownEventType = "(undecodable)"

// EventTypeName returns the entry's event type, or UnknownEventType when it
// has none.
func EventTypeName(e core.Entry) string {
	if e.EventType == "" {
		return UnknownEventType
	}
	return e.EventType
}
