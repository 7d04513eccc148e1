package monitor

import (
	"context"
	"log/slog"
	"strings"

	"github.com/deadletter/deadletter/core"
)

// LogSink writes alerts to a slog logger: a warning at warning level, a
// critical alert at core.LevelCritical and a resolve at info level. The
// monitor always sends to one.
type LogSink struct {
	log *slog.Logger
}

// NewLogSink returns a sink that logs to logger, or to slog.Default() when
// logger is nil.
func NewLogSink(logger *slog.Logger) *LogSink {
	if logger == nil {
		logger = slog.Default()
	}
	return &LogSink{log: logger}
}

// Name returns "log".
func (s *LogSink) Name() string { return "log" }

// Send logs the alert as one line.
func (s *LogSink) Send(ctx context.Context, a Alert) error {
	level := slog.LevelInfo
	message := "dlq alert resolved"
	switch a.Level {
	case LevelWarning:
		level, message = slog.LevelWarn, "dlq warning"
	case LevelCritical:
		level, message = core.LevelCritical, "dlq critical"
	}

	attrs := []slog.Attr{
		slog.String(core.LogStream, a.Source),
		slog.Int64("entries", a.Entries),
		slog.String("alert", a.Title()),
	}
	if !a.Resolved {
		attrs = append(attrs,
			slog.String("newest_event_types", strings.Join(a.NewestEventTypes, ",")),
			slog.String("failing_handlers", formatCounts(a.TopHandlers)),
			slog.Int64("dropped", a.Dropped))
	}
	s.log.LogAttrs(ctx, level, message, attrs...)
	return nil
}
