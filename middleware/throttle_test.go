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

	t.Run("CountsHeldBackLinesOnRecovery", func(t *testing.T) {
		var th throttle
		start := time.Now()
		ok, _ := th.recovered()
		require.False(t, ok, "a success without failures must not be reported")

		ok, _ = th.allow(start)
		require.True(t, ok)
		for i := range 3 {
			ok, _ = th.allow(start.Add(time.Duration(i+1) * 100 * time.Millisecond))
			require.False(t, ok)
		}
		ok, suppressed := th.recovered()
		require.True(t, ok, "the first success after a logged failure must be reported")
		require.Equal(t, 3, suppressed, "the held-back lines must be counted")
		ok, _ = th.recovered()
		require.False(t, ok, "a second success must not be reported")

		ok, _ = th.allow(start.Add(500 * time.Millisecond))
		require.False(t, ok, "a failure soon after recovery is still held back")
		ok, _ = th.recovered()
		require.False(t, ok, "a recovery is reported once per logged failure line")
		ok, suppressed = th.allow(start.Add(failureLogInterval))
		require.True(t, ok)
		require.Equal(t, 1, suppressed, "a line held back after a recovery must be counted by the next line")
	})
}
