package monitor

import (
	"fmt"
	"strings"
	"time"

	"github.com/deadletter/deadletter/inspect"
)

// Level is the severity of the DLQ's state.
type Level int

// Levels, in rising severity.
const (
	LevelOK Level = iota
	LevelWarning
	LevelCritical
)

// String returns "ok", "warning" or "critical".
func (l Level) String() string {
	switch l {
	case LevelWarning:
		return "warning"
	case LevelCritical:
		return "critical"
	}
	return "ok"
}

// MarshalText writes the level as its name in JSON.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// Alert describes the DLQ's state at one check. It carries no event payload.
type Alert struct {
	// Level is the severity. A resolve has LevelOK.
	Level Level `json:"level"`

	// Resolved marks the alert that follows a warning or critical one once
	// the DLQ is back under the warning threshold.
	Resolved bool `json:"resolved"`

	// Source names the DLQ, from Config.Source.
	Source string `json:"source"`

	// DedupKey stays the same for every alert of one Source, so that an
	// incident tool groups them and a resolve closes the incident.
	DedupKey string `json:"dedup_key"`

	// Entries is the number of entries in the DLQ.
	Entries int64 `json:"entries"`

	WarningThreshold  int `json:"warning_threshold"`
	CriticalThreshold int `json:"critical_threshold"`

	// Capacity is the DLQ's size cap, or -1 when not watched.
	// NearCapacity is set when Entries has reached CapacityRatio of it.
	Capacity     int64 `json:"capacity"`
	NearCapacity bool  `json:"near_capacity"`

	// Dropped is how many entries the cap has removed in all; DroppedNew is
	// how many since the previous check.
	Dropped    int64 `json:"dropped"`
	DroppedNew int64 `json:"dropped_new"`

	// NewestEventTypes names the event types of the newest entries, newest
	// first, at most Config.TopN.
	NewestEventTypes []string `json:"newest_event_types"`

	// TopHandlers counts the newest Scanned entries by handler, the most
	// failing first, at most Config.TopN.
	TopHandlers []inspect.Count `json:"top_handlers"`

	// TopErrors lists the largest error groups among the newest Scanned
	// entries, at most Config.TopN.
	TopErrors []ErrorSummary `json:"top_errors"`

	// Scanned is the number of newest entries that the counts cover.
	Scanned int `json:"scanned"`

	CheckedAt time.Time `json:"checked_at"`
}

// ErrorSummary is one error group in an alert.
type ErrorSummary struct {
	Key     string `json:"key"`
	Handler string `json:"handler"`
	Error   string `json:"error"`
	Count   int    `json:"count"`
}

// Title returns a one-line description of the alert, such as
// "DLQ events:dlq critical: 60 entries (critical above 50)".
func (a Alert) Title() string {
	if a.Resolved {
		return fmt.Sprintf("DLQ %s resolved: %d entries (warning above %d)",
			a.Source, a.Entries, a.WarningThreshold)
	}

	var reasons []string
	switch {
	case a.CriticalThreshold > 0 && a.Entries > int64(a.CriticalThreshold):
		reasons = append(reasons, fmt.Sprintf("critical above %d", a.CriticalThreshold))
	case a.WarningThreshold > 0 && a.Entries > int64(a.WarningThreshold):
		reasons = append(reasons, fmt.Sprintf("warning above %d", a.WarningThreshold))
	}
	if a.NearCapacity {
		reasons = append(reasons, fmt.Sprintf("near its cap of %d", a.Capacity))
	}
	if a.DroppedNew > 0 {
		reasons = append(reasons, fmt.Sprintf("%d dropped at the cap since the last check", a.DroppedNew))
	}
	return fmt.Sprintf("DLQ %s %s: %d entries (%s)", a.Source, a.Level, a.Entries, strings.Join(reasons, "; "))
}

// Details returns the lines under the title: event types, handlers, error
// groups and the commands to look further.
func (a Alert) Details() []string {
	if a.Resolved {
		return nil
	}
	var lines []string
	if len(a.NewestEventTypes) > 0 {
		lines = append(lines, "newest failed event types: "+strings.Join(a.NewestEventTypes, ", "))
	}
	if len(a.TopHandlers) > 0 {
		lines = append(lines, fmt.Sprintf("failing handlers (newest %d entries): %s",
			a.Scanned, formatCounts(a.TopHandlers)))
	}
	for _, e := range a.TopErrors {
		lines = append(lines, fmt.Sprintf("error group %s: %d x %s: %s", e.Key, e.Count, e.Handler, e.Error))
	}
	if a.Dropped > 0 {
		lines = append(lines, fmt.Sprintf("dropped at the cap in all: %d", a.Dropped))
	}
	lines = append(lines, "inspect: deadletter dlq stats; deadletter dlq list")
	return lines
}

func formatCounts(counts []inspect.Count) string {
	parts := make([]string, len(counts))
	for i, c := range counts {
		parts[i] = fmt.Sprintf("%s (%d)", c.Name, c.Count)
	}
	return strings.Join(parts, ", ")
}
