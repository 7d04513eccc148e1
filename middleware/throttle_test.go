package middleware

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestThrottle(t *testing.T) {
	t.Run("LetsOneLineThroughPerInterval", func(t *testing.T) {
		var th throttle
		start := time.Now()

		ok, suppressed := th.allow(start)
		require.True(t, ok, "the first line must pass")
		require.Zero(t, suppressed)

		for i := range 5 {
			ok, _ = th.allow(start.Add(time.Duration(i) * 100 * time.Millisecond))
			require.False(t, ok, "lines within the interval must be held back")
		}

		ok, suppressed = th.allow(start.Add(failureLogInterval))
		require.True(t, ok, "a line after the interval must pass")
		require.Equal(t, 5, suppressed, "the held-back lines must be counted")
	})
}
