package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/internal/testredis"
)

func TestDemoCommand(t *testing.T) {
	t.Run("PrintsTimelineEntryAndSummary", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code := Main([]string{"demo", "--scale", "0.01", "--redis-url", testredis.URL(t),
			"--prefix", testredis.Prefix()}, &stdout, &stderr)
		require.Equal(t, 0, code, "stderr: %s", stderr.String())

		out := stdout.String()
		for _, field := range []string{"event_data", "handler", "error", "failed_at", "event_type",
			"event_id", "aggregate_type", "aggregate_id"} {
			require.Contains(t, out, "  "+field+" ", "the printed entry must show field %s", field)
		}
		require.Contains(t, stderr.String(), "level=WARN msg=\"retry scheduled\"")
		require.Contains(t, stderr.String(), "level=CRITICAL msg=\"event dead-lettered\"")
		require.NotContains(t, stderr.String(), "Ana Souza", "logs must never hold the payload")
	})

	t.Run("RejectsBadScaleInOneLine", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code := Main([]string{"demo", "--scale", "-1"}, &stdout, &stderr)
		require.Equal(t, 1, code)
		require.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line, no usage dump: %q", stderr.String())
		require.Contains(t, stderr.String(), "--scale")
	})

	t.Run("ReportsUnreachableRedisInOneLine", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code := Main([]string{"demo", "--redis-url", "redis://:secret@127.0.0.1:1/0"}, &stdout, &stderr)
		require.Equal(t, 1, code)
		require.Contains(t, stderr.String(), "connect to redis at 127.0.0.1:1")
		require.NotContains(t, stderr.String(), "secret", "errors must not show the password")
	})
}
