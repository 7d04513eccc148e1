package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/adapters/nats"
	"github.com/deadletter/deadletter/adapters/redisstream"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/testredis"
)

// alertReceiver records the alerts that the monitor's webhook sink posts.
type alertReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	alerts []map[string]any
	raw    bytes.Buffer
}

func newAlertReceiver(t *testing.T) *alertReceiver {
	r := &alertReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var alert map[string]any
		if json.Unmarshal(body, &alert) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.alerts = append(r.alerts, alert)
		r.raw.Write(body)
	}))
	t.Cleanup(r.Close)
	return r
}

// find returns the first alert that match accepts.
func (r *alertReceiver) find(match func(map[string]any) bool) (map[string]any, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.alerts {
		if match(a) {
			return a, true
		}
	}
	return nil, false
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 15s waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runbookBroker is a broker that the runbook test runs on: an adapter for
// the service and the CLI flags that reach the same DLQ.
type runbookBroker struct {
	adapter core.Adapter
	flags   []string
}

func redisRunbookBroker(t *testing.T) runbookBroker {
	prefix := testredis.Prefix()
	adapter, err := redisstream.NewAdapter(redisstream.Config{
		URL: testredis.URL(t), Prefix: prefix,
		Block: 20 * time.Millisecond, RetryPollInterval: 5 * time.Millisecond, CloseTimeout: 2 * time.Second,
	})
	require.NoError(t, err)
	return runbookBroker{adapter: adapter,
		flags: []string{"--broker", "redis", "--redis-url", testredis.URL(t), "--prefix", prefix}}
}

func natsRunbookBroker(t *testing.T) runbookBroker {
	url := natsURL(t)
	prefix := "runbook-" + uuid.NewString()[:8]
	t.Cleanup(func() { deleteNATSStreams(t, url, prefix) })
	adapter, err := nats.NewAdapter(nats.Config{URL: url, Prefix: prefix, CloseTimeout: 2 * time.Second})
	require.NoError(t, err)
	return runbookBroker{adapter: adapter, flags: []string{"--broker", "nats", "--nats-url", url, "--prefix", prefix}}
}

// TestOperatorRunbook walks through a night's page on Redis and on NATS. An outage
// of one handler dead-letters 60 events and the monitor sends a critical
// alert. Stats and list show the entries. Once the handler is fixed, a
// replay by handler brings them back through that handler only, and the
// monitor resolves the alert.
func TestOperatorRunbook(t *testing.T) {
	t.Run("Redis", func(t *testing.T) { testOperatorRunbook(t, redisRunbookBroker(t)) })
	t.Run("NATS", func(t *testing.T) { testOperatorRunbook(t, natsRunbookBroker(t)) })
}

func testOperatorRunbook(t *testing.T, rb runbookBroker) {
	ctx := context.Background()
	flags := rb.flags
	adapter := rb.adapter
	hook := newAlertReceiver(t)
	defer adapter.Close()

	bus, err := deadletter.New(deadletter.Config{
		Adapter: adapter,
		Policy:  core.Policy{MaxRetries: 2, Initial: 5 * time.Millisecond},
		Logger:  slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	var legacyUp atomic.Bool
	var indexCalls, syncHandled atomic.Int64
	require.NoError(t, bus.Handle("index_patient", "patient.registered", func(context.Context, core.Event) error {
		indexCalls.Add(1)
		return nil
	}))
	require.NoError(t, bus.Handle("sync_to_legacy", "patient.registered", func(_ context.Context, ev core.Event) error {
		if !legacyUp.Load() {
			return errors.New("legacy HIS refused patient " + ev.AggregateID + ": connection refused")
		}
		syncHandled.Add(1)
		return nil
	}))
	busCtx, stopBus := context.WithCancel(ctx)
	busDone := make(chan error, 1)
	go func() { busDone <- bus.Run(busCtx) }()
	defer func() {
		stopBus()
		require.NoError(t, <-busDone)
	}()
	<-bus.Running()

	// The monitor runs as an operator would start it, checking every 20ms.
	monitorCtx, stopMonitor := context.WithCancel(ctx)
	monitorDone := make(chan int, 1)
	var monitorLog bytes.Buffer
	go func() {
		monitorDone <- run(monitorCtx, append([]string{"monitor", "--interval", "20ms", "--webhook-url", hook.URL,
			"--log-level", "warn"}, flags...), strings.NewReader(""), io.Discard, &lockedWriter{w: &monitorLog})
	}()

	// The outage: 60 events, each dead-lettered by sync_to_legacy.
	for range 60 {
		ev, err := core.NewEvent("patient.registered", "patient", uuid.NewString(), map[string]string{"name": payloadSecret})
		require.NoError(t, err)
		require.NoError(t, bus.Publish(ctx, ev))
	}
	waitUntil(t, "60 dead letters", func() bool {
		n, err := adapter.DLQ().Len(ctx)
		return err == nil && n == 60
	})

	var critical map[string]any
	waitUntil(t, "a critical alert", func() bool {
		var ok bool
		critical, ok = hook.find(func(a map[string]any) bool { return a["level"] == "critical" })
		return ok
	})
	require.Equal(t, "firing", critical["status"])
	require.Equal(t, []any{"patient.registered"}, critical["newest_event_types"])
	require.Equal(t, "sync_to_legacy", critical["top_handlers"].([]any)[0].(map[string]any)["name"])
	require.Contains(t, critical["title"], "critical above 50")

	// The operator looks.
	code, out, stderr := runCLI(t, append([]string{"dlq", "stats"}, flags...)...)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, ": 60 entries")
	require.Regexp(t, `sync_to_legacy\s+60\s+patient.registered\s+legacy HIS refused patient <uuid>: connection refused`, out,
		"60 failures of one outage form one error group")

	code, out, stderr = runCLI(t, append([]string{"dlq", "list", "--limit", "100", "--json"}, flags...)...)
	require.Equal(t, 0, code, stderr)
	var listed []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &listed))
	require.Len(t, listed, 60)
	require.Equal(t, "sync_to_legacy", listed[0]["handler"])

	// The legacy system is back; the operator replays that handler's
	// entries.
	legacyUp.Store(true)
	code, out, stderr = runCLI(t, append([]string{"dlq", "replay", "--handler", "sync_to_legacy", "--rate", "-1"}, flags...)...)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "replayed 60 of 60 selected entries")

	waitUntil(t, "60 replayed events handled", func() bool { return syncHandled.Load() == 60 })
	n, err := adapter.DLQ().Len(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "the DLQ is empty")
	replayed, err := adapter.DLQ().List(ctx, core.ListOptions{Replayed: true, Limit: 100})
	require.NoError(t, err)
	require.Len(t, replayed, 60, "the replayed store holds the 60 entries")
	require.EqualValues(t, 60, indexCalls.Load(), "index_patient is not called again")

	waitUntil(t, "a resolve", func() bool {
		_, ok := hook.find(func(a map[string]any) bool { return a["status"] == "resolved" })
		return ok
	})
	stopMonitor()
	require.Equal(t, 0, <-monitorDone)

	hook.mu.Lock()
	defer hook.mu.Unlock()
	require.NotContains(t, hook.raw.String(), payloadSecret, "alerts never carry event data")
	require.NotContains(t, monitorLog.String(), payloadSecret)
}

// lockedWriter serialises writes from the monitor's goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
