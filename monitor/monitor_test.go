package monitor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/adapters/memory"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/monitor"
)

// secretPayload is in every test entry's event data; no alert may show it.
const secretPayload = "Ana Souza"

func newDLQ(t *testing.T, maxLen int) core.DLQ {
	t.Helper()
	adapter, err := memory.New(memory.Config{DLQMaxLen: maxLen})
	require.NoError(t, err)
	t.Cleanup(func() { _ = adapter.Close() })
	return adapter.DLQ()
}

// fill adds n entries of handler and event type.
func fill(t *testing.T, dlq core.DLQ, n int, handler, eventType string) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id, err := dlq.Add(context.Background(), core.Entry{
			EventData:     []byte(`{"event_type":"` + eventType + `","data":{"name":"` + secretPayload + `"}}`),
			Handler:       handler,
			Error:         fmt.Sprintf("legacy refused record %d", i),
			FailedAt:      time.Now().UTC(),
			EventType:     eventType,
			EventID:       fmt.Sprintf("evt-%d", i),
			AggregateType: "patient",
			AggregateID:   "p-1",
		})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	return ids
}

// drain deletes every entry.
func drain(t *testing.T, dlq core.DLQ) {
	t.Helper()
	entries, err := dlq.List(context.Background(), core.ListOptions{Limit: 100_000})
	require.NoError(t, err)
	for _, e := range entries {
		_, err := dlq.Delete(context.Background(), e.ID)
		require.NoError(t, err)
	}
}

// receiver is a local HTTP server that records the JSON bodies posted to it
// and replies with status.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
	raw    []string
	status int
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{status: http.StatusOK}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if req.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusUnsupportedMediaType)
			return
		}
		var decoded map[string]any
		if err := json.Unmarshal(body, &decoded); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.raw = append(r.raw, string(body))
		r.bodies = append(r.bodies, decoded)
		w.WriteHeader(r.status)
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) setStatus(status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = status
}

func (r *receiver) received() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any{}, r.bodies...)
}

func (r *receiver) allRaw() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.raw, "\n")
}

// logBuffer is a concurrency-safe log destination.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger(buf *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{
		Level: slog.LevelDebug, ReplaceAttr: core.ReplaceLevelName,
	}))
}

func newMonitor(t *testing.T, cfg monitor.Config) *monitor.Monitor {
	t.Helper()
	m, err := monitor.New(cfg)
	require.NoError(t, err)
	return m
}

func TestMonitorLevels(t *testing.T) {
	ctx := context.Background()
	dlq := newDLQ(t, -1)
	var logs logBuffer
	m := newMonitor(t, monitor.Config{DLQ: dlq, Source: "events:dlq", Logger: newLogger(&logs)})

	alert, err := m.Check(ctx)
	require.NoError(t, err)
	require.Equal(t, monitor.LevelOK, alert.Level)
	require.Empty(t, logs.String(), "an empty DLQ logs nothing")

	fill(t, dlq, 10, "send_email", "patient.registered")
	alert, err = m.Check(ctx)
	require.NoError(t, err)
	require.Equal(t, monitor.LevelOK, alert.Level, "10 entries are not above the warning threshold")

	fill(t, dlq, 1, "send_email", "patient.registered")
	alert, err = m.Check(ctx)
	require.NoError(t, err)
	require.Equal(t, monitor.LevelWarning, alert.Level)
	require.Contains(t, logs.String(), `level=WARN msg="dlq warning"`)

	fill(t, dlq, 40, "sync_to_legacy", "appointment.booked")
	alert, err = m.Check(ctx)
	require.NoError(t, err)
	require.Equal(t, monitor.LevelCritical, alert.Level)
	require.Contains(t, logs.String(), `level=CRITICAL msg="dlq critical"`)
	require.Equal(t, []string{"appointment.booked", "patient.registered"}, alert.NewestEventTypes)
	require.Equal(t, "sync_to_legacy", alert.TopHandlers[0].Name)
	require.Equal(t, 40, alert.TopHandlers[0].Count)
	require.NotContains(t, logs.String(), secretPayload)
}

func TestMonitorNewestEventTypes(t *testing.T) {
	dlq := newDLQ(t, -1)
	for i := range 8 {
		fill(t, dlq, 7, fmt.Sprintf("handler_%d", i), fmt.Sprintf("type.t%d", i))
	}
	m := newMonitor(t, monitor.Config{DLQ: dlq})
	alert, err := m.Check(context.Background())
	require.NoError(t, err)
	require.Equal(t, monitor.LevelCritical, alert.Level)
	require.Equal(t, []string{"type.t7", "type.t6", "type.t5", "type.t4", "type.t3"}, alert.NewestEventTypes,
		"the critical alert names the 5 newest failed event types")
	require.Len(t, alert.TopHandlers, 5)
}

func TestMonitorDoesNotRepeatAlerts(t *testing.T) {
	ctx := context.Background()
	dlq := newDLQ(t, -1)
	hook := newReceiver(t)
	m := newMonitor(t, monitor.Config{DLQ: dlq, Sinks: []monitor.Sink{&monitor.WebhookSink{URL: hook.URL}},
		Logger: slog.New(slog.DiscardHandler)})

	fill(t, dlq, 12, "h", "a.b")
	for range 3 {
		_, err := m.Check(ctx)
		require.NoError(t, err)
	}
	require.Len(t, hook.received(), 1, "an unchanged warning is sent once")

	fill(t, dlq, 3, "h", "a.b")
	_, err := m.Check(ctx)
	require.NoError(t, err)
	require.Len(t, hook.received(), 1, "15 entries stay in the bucket of 10 to 19")

	fill(t, dlq, 10, "h", "a.b")
	_, err = m.Check(ctx)
	require.NoError(t, err)
	require.Len(t, hook.received(), 2, "25 entries reach the bucket from 20")

	fill(t, dlq, 30, "h", "a.b")
	_, err = m.Check(ctx)
	require.NoError(t, err)
	require.Len(t, hook.received(), 3, "55 entries turn critical")
	require.Equal(t, "critical", hook.received()[2]["level"])

	drain(t, dlq)
	_, err = m.Check(ctx)
	require.NoError(t, err)
	bodies := hook.received()
	require.Len(t, bodies, 4)
	require.Equal(t, "resolved", bodies[3]["status"])
	require.Equal(t, true, bodies[3]["resolved"])

	_, err = m.Check(ctx)
	require.NoError(t, err)
	require.Len(t, hook.received(), 4, "an empty DLQ is resolved once")
}

func TestMonitorRetriesFailingSink(t *testing.T) {
	ctx := context.Background()
	dlq := newDLQ(t, -1)
	hook := newReceiver(t)
	hook.setStatus(http.StatusInternalServerError)
	var logs logBuffer
	m := newMonitor(t, monitor.Config{DLQ: dlq, Sinks: []monitor.Sink{&monitor.WebhookSink{URL: hook.URL + "/secret-token"}},
		Logger: newLogger(&logs)})

	fill(t, dlq, 60, "h", "a.b")
	alert, err := m.Check(ctx)
	require.NoError(t, err, "a failing sink is not a failed check")
	require.Equal(t, monitor.LevelCritical, alert.Level)
	require.Len(t, hook.received(), 1)
	require.Contains(t, logs.String(), `msg="alert sink failed; trying again at the next check" sink=webhook`)
	require.Contains(t, logs.String(), "status 500")
	require.NotContains(t, logs.String(), "secret-token", "sink errors never show the URL")

	hook.setStatus(http.StatusOK)
	_, err = m.Check(ctx)
	require.NoError(t, err)
	require.Len(t, hook.received(), 2, "the failed alert is sent again at the next check")

	_, err = m.Check(ctx)
	require.NoError(t, err)
	require.Len(t, hook.received(), 2, "and not after it succeeded")
}

func TestMonitorSurvivesBrokenSinks(t *testing.T) {
	ctx := context.Background()
	dlq := newDLQ(t, -1)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	var logs logBuffer
	m := newMonitor(t, monitor.Config{DLQ: dlq, Logger: newLogger(&logs), Sinks: []monitor.Sink{
		panicSink{},
		&monitor.SlackSink{WebhookURL: closed.URL + "/services/T000/B000/secret"},
	}})

	fill(t, dlq, 60, "h", "a.b")
	_, err := m.Check(ctx)
	require.NoError(t, err)
	require.Contains(t, logs.String(), "sink=panic")
	require.Contains(t, logs.String(), "panicked")
	require.Contains(t, logs.String(), "sink=slack")
	require.NotContains(t, logs.String(), "secret")
	require.Contains(t, logs.String(), `level=CRITICAL msg="dlq critical"`, "the log sink still alerts")
}

type panicSink struct{}

func (panicSink) Name() string                              { return "panic" }
func (panicSink) Send(context.Context, monitor.Alert) error { panic("sink bug") }

func TestMonitorCapacityAndDropped(t *testing.T) {
	ctx := context.Background()
	dlq := newDLQ(t, 20)
	hook := newReceiver(t)
	m := newMonitor(t, monitor.Config{DLQ: dlq, WarningThreshold: -1, CriticalThreshold: -1,
		Capacity: 20, CapacityRatio: 0.5, Sinks: []monitor.Sink{&monitor.WebhookSink{URL: hook.URL}},
		Logger: slog.New(slog.DiscardHandler)})

	fill(t, dlq, 9, "h", "a.b")
	alert, err := m.Check(ctx)
	require.NoError(t, err)
	require.Equal(t, monitor.LevelOK, alert.Level)

	fill(t, dlq, 1, "h", "a.b")
	alert, err = m.Check(ctx)
	require.NoError(t, err)
	require.Equal(t, monitor.LevelWarning, alert.Level)
	require.True(t, alert.NearCapacity)
	require.Contains(t, alert.Title(), "near its cap of 20")

	fill(t, dlq, 15, "h", "a.b")
	alert, err = m.Check(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 5, alert.DroppedNew)
	require.EqualValues(t, 5, alert.Dropped)
	require.Contains(t, alert.Title(), "5 dropped at the cap since the last check")
	require.Len(t, hook.received(), 2, "dropped entries are worth a new alert")
	require.EqualValues(t, 5, hook.received()[1]["dropped_new"])
}

func TestSlackSink(t *testing.T) {
	dlq := newDLQ(t, -1)
	hook := newReceiver(t)
	m := newMonitor(t, monitor.Config{DLQ: dlq, Source: "events:dlq",
		Sinks: []monitor.Sink{&monitor.SlackSink{WebhookURL: hook.URL}}, Logger: slog.New(slog.DiscardHandler)})

	fill(t, dlq, 60, "sync_to_legacy", "patient.registered")
	_, err := m.Check(context.Background())
	require.NoError(t, err)

	bodies := hook.received()
	require.Len(t, bodies, 1)
	text, ok := bodies[0]["text"].(string)
	require.True(t, ok, "a Slack message has a text field")
	require.Contains(t, text, "DLQ events:dlq critical: 60 entries (critical above 50)")
	require.Contains(t, text, "newest failed event types: patient.registered")
	require.Contains(t, text, "sync_to_legacy (60)")
	require.Contains(t, text, "legacy refused record <n>")
	require.NotContains(t, hook.allRaw(), secretPayload)
	require.NotContains(t, hook.allRaw(), "event_data")
}

func TestPagerDutySink(t *testing.T) {
	ctx := context.Background()
	dlq := newDLQ(t, -1)
	hook := newReceiver(t)
	hook.setStatus(http.StatusAccepted)
	m := newMonitor(t, monitor.Config{DLQ: dlq, Source: "events:dlq", Logger: slog.New(slog.DiscardHandler),
		Sinks: []monitor.Sink{&monitor.PagerDutySink{RoutingKey: "R0UTING", URL: hook.URL}}})

	fill(t, dlq, 20, "h", "a.b")
	_, err := m.Check(ctx)
	require.NoError(t, err)
	require.Empty(t, hook.received(), "a warning does not page by default")

	fill(t, dlq, 40, "h", "c.d")
	_, err = m.Check(ctx)
	require.NoError(t, err)
	bodies := hook.received()
	require.Len(t, bodies, 1)
	trigger := bodies[0]
	require.Equal(t, "R0UTING", trigger["routing_key"])
	require.Equal(t, "trigger", trigger["event_action"])
	require.Equal(t, "deadletter/events:dlq", trigger["dedup_key"])
	payload := trigger["payload"].(map[string]any)
	require.Equal(t, "critical", payload["severity"])
	require.Equal(t, "events:dlq", payload["source"])
	require.Contains(t, payload["summary"], "60 entries")
	details := payload["custom_details"].(map[string]any)
	require.Equal(t, []any{"c.d", "a.b"}, details["newest_event_types"])

	// Falling back to a warning resolves the page.
	drain(t, dlq)
	fill(t, dlq, 20, "h", "a.b")
	_, err = m.Check(ctx)
	require.NoError(t, err)
	bodies = hook.received()
	require.Len(t, bodies, 2)
	require.Equal(t, "resolve", bodies[1]["event_action"])
	require.Equal(t, "deadletter/events:dlq", bodies[1]["dedup_key"], "the resolve uses the trigger's dedup key")
	require.NotContains(t, bodies[1], "payload")
	require.NotContains(t, hook.allRaw(), secretPayload)
}

func TestWebhookSink(t *testing.T) {
	dlq := newDLQ(t, -1)
	hook := newReceiver(t)
	m := newMonitor(t, monitor.Config{DLQ: dlq, Source: "events:dlq", Logger: slog.New(slog.DiscardHandler),
		Sinks: []monitor.Sink{&monitor.WebhookSink{URL: hook.URL}}})

	fill(t, dlq, 11, "h", "a.b")
	_, err := m.Check(context.Background())
	require.NoError(t, err)
	body := hook.received()[0]
	require.Equal(t, "firing", body["status"])
	require.Equal(t, "warning", body["level"])
	require.EqualValues(t, 11, body["entries"])
	require.Equal(t, "events:dlq", body["source"])
	require.Equal(t, "DLQ events:dlq warning: 11 entries (warning above 10)", body["title"])
	require.NotContains(t, hook.allRaw(), secretPayload)
}

func TestMonitorRun(t *testing.T) {
	dlq := newDLQ(t, -1)
	fill(t, dlq, 60, "h", "a.b")
	hook := newReceiver(t)
	m := newMonitor(t, monitor.Config{DLQ: dlq, Interval: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
		Sinks: []monitor.Sink{&monitor.WebhookSink{URL: hook.URL}}})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	require.Eventually(t, func() bool { return len(hook.received()) == 1 }, 5*time.Second, 5*time.Millisecond)
	drain(t, dlq)
	require.Eventually(t, func() bool { return len(hook.received()) == 2 }, 5*time.Second, 5*time.Millisecond,
		"Run checks again at its interval and resolves")
	cancel()
	require.NoError(t, <-done)
}

func TestMonitorConfig(t *testing.T) {
	dlq := newDLQ(t, -1)
	cases := map[string]monitor.Config{
		"MissingDLQ":        {},
		"WarningNotBelow":   {DLQ: dlq, WarningThreshold: 50, CriticalThreshold: 50},
		"RatioAboveOne":     {DLQ: dlq, CapacityRatio: 1.5},
		"NegativeInterval":  {DLQ: dlq, Interval: -time.Second},
		"NilSink":           {DLQ: dlq, Sinks: []monitor.Sink{nil}},
		"NegativeThreshold": {DLQ: dlq, CriticalThreshold: -2},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := monitor.New(cfg)
			require.ErrorIs(t, err, core.ErrInvalidConfig)
		})
	}
}

func TestRunReportsEachCheck(t *testing.T) {
	adapter, err := memory.New(memory.Config{})
	require.NoError(t, err)
	checks := make(chan monitor.Alert, 10)
	m, err := monitor.New(monitor.Config{
		DLQ: adapter.DLQ(), Interval: 5 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
		OnCheck: func(a monitor.Alert, err error) {
			if err == nil {
				checks <- a
			}
		},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	for range 2 {
		a := <-checks
		require.Equal(t, monitor.LevelOK, a.Level)
	}
	cancel()
	require.NoError(t, <-done)
}
