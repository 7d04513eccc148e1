package logthrottle

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestThrottle(t *testing.T) {
	t.Run("LetsOneLinePerMessageThroughPerInterval", func(t *testing.T) {
		var th Throttle
		start := time.Now()

		ok, suppressed := th.Allow("read failed", start)
		require.True(t, ok, "the first line must pass")
		require.Zero(t, suppressed)
		ok, _ = th.Allow("ack failed", start)
		require.True(t, ok, "a line with another message must pass")

		for i := range 5 {
			ok, _ = th.Allow("read failed", start.Add(time.Duration(i)*100*time.Millisecond))
			require.False(t, ok, "lines within the interval must be held back")
		}

		ok, suppressed = th.Allow("read failed", start.Add(Interval))
		require.True(t, ok, "a line after the interval must pass")
		require.Equal(t, 5, suppressed, "the held-back lines must be counted")
		ok, suppressed = th.Allow("read failed", start.Add(2*Interval))
		require.True(t, ok)
		require.Zero(t, suppressed, "the count must restart after a line is written")
	})

	t.Run("LogsSuppressedCount", func(t *testing.T) {
		var out bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&out, nil))
		var th Throttle
		for range 3 {
			th.Log(logger, slog.LevelWarn, "read failed", slog.String("stream", "events:a"))
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		require.Len(t, lines, 1, "only the first of three lines within the interval must be written")
		require.Contains(t, lines[0], `msg="read failed" stream=events:a`)
		require.NotContains(t, lines[0], "suppressed", "nothing was held back before the first line")
	})
}
