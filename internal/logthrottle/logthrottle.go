// Package logthrottle limits how often the adapters log a repeated failure,
// such as every call failing while the broker restarts, so that an outage
// is logged without flooding the log.
package logthrottle

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Interval is the shortest gap between two lines with the same message.
const Interval = time.Second

// Throttle lets one line per message through each Interval and counts the
// lines it holds back. The zero value is ready to use, and a Throttle is
// safe for concurrent use.
type Throttle struct {
	mu         sync.Mutex
	last       map[string]time.Time
	suppressed map[string]int
}

// Allow reports whether a line with msg may be logged at now and, if so, how
// many lines with msg were held back since the last one.
func (t *Throttle) Allow(msg string, now time.Time) (ok bool, suppressed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil {
		t.last, t.suppressed = map[string]time.Time{}, map[string]int{}
	}
	if last, seen := t.last[msg]; seen && now.Sub(last) < Interval {
		t.suppressed[msg]++
		return false, 0
	}
	suppressed = t.suppressed[msg]
	delete(t.suppressed, msg)
	t.last[msg] = now
	return true, suppressed
}

// Log writes msg with attrs to logger at level, unless a line with the same
// message was written less than Interval ago. A line written after others
// were held back carries their count as "suppressed".
func (t *Throttle) Log(logger *slog.Logger, level slog.Level, msg string, attrs ...slog.Attr) {
	ok, suppressed := t.Allow(msg, time.Now())
	if !ok {
		return
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("suppressed", suppressed))
	}
	logger.LogAttrs(context.Background(), level, msg, attrs...)
}
