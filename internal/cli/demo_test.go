package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
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

// demoSummary returns the summary lines of the demo's output, without the
// elapsed time.
func demoSummary(t *testing.T, out string) []string {
	t.Helper()
	_, summary, ok := strings.Cut(out, "\nSummary after ")
	require.True(t, ok, "the demo prints a summary: %s", out)
	lines := strings.Split(strings.TrimSpace(summary), "\n")
	_, lines[0], _ = strings.Cut(lines[0], ": ")
	return lines
}

func TestDemoCommandOnEachBroker(t *testing.T) {
	prefix := testredis.Prefix()
	t.Cleanup(func() {
		client := testredis.Client(t)
		if keys, err := client.Keys(context.Background(), prefix+":*").Result(); err == nil && len(keys) > 0 {
			client.Del(context.Background(), keys...)
		}
	})
	code, stdout, stderr := runCLI(t, "demo", "--scale", "0.01", "--broker", "redis",
		"--redis-url", testredis.URL(t), "--prefix", prefix)
	require.Equal(t, 0, code, stderr)
	want := demoSummary(t, stdout)
	require.Contains(t, stderr, "broker: redis at ")

	t.Run("NATS", func(t *testing.T) {
		url := natsURL(t)
		prefix := "t" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
		t.Cleanup(func() { deleteNATSStreams(t, url, prefix) })

		code, stdout, stderr := runCLI(t, "demo", "--scale", "0.01", "--broker", "nats", "--nats-url", url,
			"--prefix", prefix)
		require.Equal(t, 0, code, stderr)
		require.Equal(t, want[:len(want)-2], demoSummary(t, stdout)[:len(want)-2], "same attempts as on Redis")
		require.Contains(t, stdout, "stream view "+strings.ToUpper(prefix)+"_DLQ")
		require.Contains(t, stderr, "broker: nats at "+url+" (set by --broker)")
	})

	t.Run("Embedded", func(t *testing.T) {
		dir := t.TempDir()
		code, stdout, stderr := runCLI(t, "demo", "--scale", "0.01", "--broker", "embedded", "--data-dir", dir)
		require.Equal(t, 0, code, stderr)
		require.Equal(t, want[:len(want)-2], demoSummary(t, stdout)[:len(want)-2], "same attempts as on Redis")
		hint := "deadletter dlq list --broker embedded --data-dir " + dir
		require.Contains(t, stdout, "Inspect the DLQ with: "+hint)

		// The hint works once the demo has ended: the DLQ is on disk.
		code, stdout, stderr = runCLI(t, strings.Fields(hint)[1:]...)
		require.Equal(t, 0, code, stderr)
		require.Contains(t, stdout, "sync_to_legacy")
		require.Contains(t, stdout, "patient.registered")
	})

	t.Run("ConfigFile", func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "deadletter.yaml")
		require.NoError(t, os.WriteFile(file, []byte("broker: memory\nlog_level: error\n"), 0o600))
		code, stdout, stderr := runCLI(t, "demo", "--scale", "0.01", "--config", file)
		require.Equal(t, 0, code, stderr)
		require.Equal(t, want[:len(want)-2], demoSummary(t, stdout)[:len(want)-2])
		require.True(t, strings.HasPrefix(stderr, "broker: memory (set by broker in deadletter.yaml)\n"), stderr)
		require.NotContains(t, stderr, "level=WARN", "log_level error hides the scheduled retries")
	})

	t.Run("RejectsBadConfigInOneLine", func(t *testing.T) {
		code, _, stderr := runCLI(t, "demo", "--broker", "rabbitmq")
		requireOneLineError(t, code, stderr,
			`config: --broker: "rabbitmq" is not a broker; use redis, nats, embedded, memory or auto`)
	})

	t.Run("DLQCommandsRejectMemory", func(t *testing.T) {
		code, _, stderr := runCLI(t, "dlq", "list", "--broker", "memory")
		requireOneLineError(t, code, stderr, "the memory broker keeps its DLQ inside one process")
	})
}
