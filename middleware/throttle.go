package middleware

import (
	"sync"
	"time"
)

// failureLogInterval is the shortest gap between two log lines of the same
// repeated failure, such as a DLQ that cannot be written while many events
// wait for it.
const failureLogInterval = time.Second

// throttle lets one log line through per interval and counts the ones it
// holds back, so that an outage is logged without flooding the log.
type throttle struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether a line may be logged now and, if so, how many lines
// were held back since the last one.
func (t *throttle) allow(now time.Time) (ok bool, suppressed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.last.IsZero() && now.Sub(t.last) < failureLogInterval {
		t.suppressed++
		return false, 0
	}
	suppressed, t.suppressed = t.suppressed, 0
	t.last = now
	return true, suppressed
}
