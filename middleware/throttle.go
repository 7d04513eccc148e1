package middleware

import (
	"sync"
	"time"
)

// failureLogInterval is the shortest gap between two log lines of the same
// repeated failure, such as a DLQ that cannot be written while many events
// wait for it.
const failureLogInterval = time.Second

// throttle lets one log line of a repeated failure through per interval and
// counts the ones it holds back, so that an outage is logged without
// flooding the log. Once the failure ends, recovered hands over the count
// that no failure line has reported yet.
type throttle struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
	// logged is true from a logged failure line until recovered reports
	// the end of the failure.
	logged bool
}

// allow reports whether a failure line may be logged now and, if so, how
// many failure lines were held back since the last line.
func (t *throttle) allow(now time.Time) (ok bool, suppressed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.last.IsZero() && now.Sub(t.last) < failureLogInterval {
		t.suppressed++
		return false, 0
	}
	suppressed, t.suppressed = t.suppressed, 0
	t.last = now
	t.logged = true
	return true, suppressed
}

// recovered marks the end of a failure and is called after a success. It
// reports whether to log that the failure ended and, if so, how many failure lines were held back since the
// last line. It reports true once per logged failure line, so a failure
// that comes and goes adds at most one such line per interval.
func (t *throttle) recovered() (ok bool, suppressed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.logged {
		return false, 0
	}
	t.logged = false
	suppressed, t.suppressed = t.suppressed, 0
	return true, suppressed
}
