package core

import "log/slog"

// LevelCritical is the slog level above error used for a dead-lettered
// event, a failed DLQ write and the monitor's critical threshold.
const LevelCritical = slog.Level(12)

// Names of the structured log fields that deadletter writes.
const (
	LogEventType     = "event_type"
	LogEventID       = "event_id"
	LogHandler       = "handler"
	LogRetryAttempt  = "retry_attempt"
	LogError         = "error"
	LogAggregateType = "aggregate_type"
	LogAggregateID   = "aggregate_id"
	LogStream        = "stream"
	LogDelay         = "delay"
)

// ReplaceLevelName prints LevelCritical as "CRITICAL" instead of "ERROR+4".
// Pass it as slog.HandlerOptions.ReplaceAttr.
func ReplaceLevelName(groups []string, a slog.Attr) slog.Attr {
	if a.Key != slog.LevelKey || len(groups) > 0 {
		return a
	}
	if level, ok := a.Value.Any().(slog.Level); ok && level >= LevelCritical {
		a.Value = slog.StringValue("CRITICAL")
	}
	return a
}
