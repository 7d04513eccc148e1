package middleware

import (
	"log/slog"
	"time"

	"github.com/deadletter/deadletter/core"
)

func (r *Retry) logFailedAttempt(a *attempt, err error) {
	r.log.LogAttrs(a.msg.Context(), slog.LevelError, "handler attempt failed",
		append(a.attrs(), slog.String(core.LogError, err.Error()))...)
}

func (r *Retry) logRetry(a *attempt, pause time.Duration) {
	// The line announces the next retry, so retry_attempt is that retry's
	// number rather than the failed attempt's.
	attrs := append(a.attrsForRetry(a.number), slog.Duration(core.LogDelay, pause))
	r.log.LogAttrs(a.msg.Context(), slog.LevelWarn, "retry scheduled", attrs...)
}
