package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/adapters/memory"
	"github.com/deadletter/deadletter/config"
)

func TestNextPageHintHidesTokensAndURLLists(t *testing.T) {
	const secret = "s3cretMARKER"
	cases := map[string]struct{ flag, url, want string }{
		"NATSToken": {"--nats-url", "nats://" + secret + "@127.0.0.1:4222", "nats://xxxxx@127.0.0.1:4222"},
		"NATSList": {"--nats-url", "nats://a:" + secret + "@127.0.0.1:4222,nats://a:" + secret + "@127.0.0.1:4223",
			"nats://a:xxxxx@127.0.0.1:4222,nats://a:xxxxx@127.0.0.1:4223"},
		"SlashInPassword": {"--redis-url", "redis://:6379/" + secret + "@127.0.0.1:6379/0", "'[redacted]'"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			root := newRoot(io.Discard, io.Discard)
			list, _, err := root.Find([]string{"dlq", "list"})
			require.NoError(t, err)
			require.NoError(t, list.ParseFlags([]string{c.flag, c.url}))

			hint := nextPageHint(list, "1-1")
			require.NotContains(t, hint, secret)
			require.Contains(t, hint, c.flag+" "+c.want)
		})
	}
}

func TestServeListensOnLoopbackByDefault(t *testing.T) {
	host, _, err := net.SplitHostPort(DefaultListen)
	require.NoError(t, err)
	require.True(t, net.ParseIP(host).IsLoopback(), "DefaultListen %s is a loopback address", DefaultListen)

	flag := newServeCommand(io.Discard, io.Discard).Flags().Lookup("listen")
	require.NotNil(t, flag)
	require.Equal(t, DefaultListen, flag.DefValue, "serve listens on DefaultListen unless --listen is given")
}

func TestServeWarnsWhenReachableBeyondHost(t *testing.T) {
	// The addresses are checked without binding to them, so the test opens
	// no port beyond loopback.
	for _, c := range []struct {
		addr   string
		beyond bool
	}{
		{"127.0.0.1:9464", false},
		{"127.0.0.2:9464", false},
		{"[::1]:9464", false},
		{"0.0.0.0:9464", true},
		{"[::]:9464", true},
		{"192.0.2.10:9464", true},
		{"[2001:db8::1]:9464", true},
	} {
		addr, err := net.ResolveTCPAddr("tcp", c.addr)
		require.NoError(t, err)
		require.Equal(t, c.beyond, reachableBeyondHost(addr), c.addr)
	}
	require.True(t, reachableBeyondHost(&net.UnixAddr{Name: "/tmp/x", Net: "unix"}),
		"an address of another kind is not known to be local")

	t.Run("WarningBeyondLoopback", func(t *testing.T) {
		var logs bytes.Buffer
		addr, err := net.ResolveTCPAddr("tcp", "0.0.0.0:9464")
		require.NoError(t, err)
		warnIfReachable(newLogger(&logs, slog.LevelInfo), addr)
		require.Contains(t, logs.String(), "level=WARN")
		require.Contains(t, logs.String(), "no authentication")
		require.Contains(t, logs.String(), "listen=0.0.0.0:9464")
	})

	t.Run("NoWarningOnLoopback", func(t *testing.T) {
		var logs bytes.Buffer
		serveUntilReady(t, "127.0.0.1:0", &logs)
		require.Contains(t, logs.String(), "serving metrics")
		require.NotContains(t, logs.String(), "no authentication")
	})
}

// TestServeRejectsMutatingMethods checks that serve's HTTP handler only
// reads: every route rejects POST, PUT, PATCH and DELETE. Replay and
// delete exist in the CLI alone. An HTTP route that performed them would
// need authentication first, and would fail this test.
func TestServeRejectsMutatingMethods(t *testing.T) {
	adapter, err := memory.New(memory.Config{})
	require.NoError(t, err)
	defer adapter.Close()
	server := httptest.NewServer(serveMux(adapter.DLQ(), -1, slog.New(slog.DiscardHandler)))
	defer server.Close()

	paths := []string{"/", "/metrics", "/healthz", "/dlq", "/dlq/replay", "/dlq/delete", "/replay", "/delete",
		"/entries", "/entries/1-0", "/api/dlq"}
	for _, path := range paths {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			req, err := http.NewRequest(method, server.URL+path, strings.NewReader(`{"all":true}`))
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.Contains(t, []int{http.StatusNotFound, http.StatusMethodNotAllowed}, resp.StatusCode,
				"%s %s", method, path)
		}
	}

	for _, path := range paths {
		resp, err := http.Get(server.URL + path)
		require.NoError(t, err)
		_ = resp.Body.Close()
		if path == "/metrics" || path == "/healthz" {
			require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s", path)
			continue
		}
		require.Equal(t, http.StatusNotFound, resp.StatusCode, "GET %s serves nothing", path)
	}
}

// serveUntilReady starts serve on a memory broker at listen, with its log
// in logs, and returns once it listens. The end of the test stops it.
func serveUntilReady(t *testing.T, listen string, logs io.Writer) {
	t.Helper()
	adapter, err := memory.New(memory.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = adapter.Close() })

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- runServe(ctx, &broker{Broker: &config.Broker{Adapter: adapter}, source: "memory DLQ"}, serveConfig{
			listen: listen, config: config.Config{Monitor: config.MonitorConfig{Window: -1}},
			logger: newLogger(logs, slog.LevelInfo), ready: ready,
		})
	}()
	<-ready
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}
