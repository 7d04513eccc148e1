package cli

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/config"
)

func TestServe(t *testing.T) {
	s := seed(t, map[string]int{"sync_to_legacy/patient.registered": 3, "send_email/appointment.booked": 2})
	b := openSeeded(t, s)
	defer b.Close()

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- runServe(ctx, b, serveConfig{
			listen: "127.0.0.1:0", config: config.Config{Monitor: config.MonitorConfig{Window: 1000}},
			logger: slog.New(slog.DiscardHandler), ready: ready,
		})
	}()
	addr := <-ready

	body := get(t, "http://"+addr+"/metrics", http.StatusOK)
	require.Contains(t, body, "deadletter_dlq_up 1\n")
	require.Contains(t, body, "deadletter_dlq_entries 5\n")
	require.Contains(t, body, "deadletter_dlq_dropped_total 0\n")
	require.Contains(t, body, `deadletter_dlq_recent_entries_by_handler{handler="sync_to_legacy"} 3`)
	require.Contains(t, body, `deadletter_dlq_recent_entries_by_event_type{event_type="appointment.booked"} 2`)
	require.Contains(t, body, "go_goroutines")
	require.NotContains(t, body, payloadSecret)

	require.Equal(t, "ok\n", get(t, "http://"+addr+"/healthz", http.StatusOK))

	cancel()
	require.NoError(t, <-done)
}

func TestServeHealthFailsWithoutRedis(t *testing.T) {
	s := seed(t, map[string]int{"h/a.b": 1})
	b := openSeeded(t, s)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	go func() {
		_ = runServe(ctx, b, serveConfig{listen: "127.0.0.1:0", config: config.Config{Monitor: config.MonitorConfig{Window: -1}},
			logger: slog.New(slog.DiscardHandler), ready: ready})
	}()
	addr := <-ready

	require.NoError(t, b.Close(), "a closed client stands for a broker that went away")
	require.Equal(t, "dlq unreachable\n", get(t, "http://"+addr+"/healthz", http.StatusServiceUnavailable))
	require.Contains(t, get(t, "http://"+addr+"/metrics", http.StatusOK), "deadletter_dlq_up 0\n")
}

func TestServeRejectsBadListen(t *testing.T) {
	s := seed(t, map[string]int{})
	code, _, stderr := runCLI(t, append([]string{"serve", "--listen", "127.0.0.1:notaport"}, s.flags...)...)
	requireOneLineError(t, code, stderr, "listen on 127.0.0.1:notaport")
}

// openSeeded opens the seeded DLQ's broker as the commands do.
func openSeeded(t *testing.T, s *seeded) *broker {
	t.Helper()
	cfg, err := config.Load(config.Sources{
		LookupEnv: func(string) (string, bool) { return "", false },
		Flags: []config.Setting{
			{Key: "redis.url", Value: s.flags[1], Origin: "--redis-url"},
			{Key: "prefix", Value: s.flags[3], Origin: "--prefix"},
		},
	})
	require.NoError(t, err)
	b, err := openBroker(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard, true)
	require.NoError(t, err)
	return b
}

func get(t *testing.T, url string, status int) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, status, resp.StatusCode, "GET %s: %s", url, strings.TrimSpace(string(body)))
	return string(body)
}
