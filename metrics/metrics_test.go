package metrics_test

import (
	"context"
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

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/adapters/memory"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/metrics"
)

// scrape fetches /metrics from a server of registry and parses it.
func scrape(t *testing.T, registry *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	server := httptest.NewServer(promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	defer server.Close()

	resp, err := http.Get(server.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)

	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	require.NoError(t, err)
	return families
}

// value returns the value of the sample of family with exactly labels, or
// fails the test.
func value(t *testing.T, families map[string]*dto.MetricFamily, family string, labels map[string]string) float64 {
	t.Helper()
	f, ok := families[family]
	require.True(t, ok, "metric %s is missing", family)
	for _, m := range f.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("metric %s has no sample with labels %v", family, labels)
	return 0
}

func hasLabels(m *dto.Metric, labels map[string]string) bool {
	if len(m.GetLabel()) != len(labels) {
		return false
	}
	for _, pair := range m.GetLabel() {
		if labels[pair.GetName()] != pair.GetValue() {
			return false
		}
	}
	return true
}

func TestMetricsAfterRunWithFailures(t *testing.T) {
	registry := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Config{Registerer: registry})
	require.NoError(t, err)

	adapter, err := memory.New(memory.Config{})
	require.NoError(t, err)
	defer adapter.Close()
	registry.MustRegister(metrics.NewDLQCollector(metrics.DLQCollectorConfig{DLQ: adapter.DLQ()}))

	bus, err := deadletter.New(deadletter.Config{
		Adapter:           m.InstrumentAdapter(adapter),
		Policy:            core.Policy{MaxRetries: 2, Initial: 2 * time.Millisecond},
		Logger:            slog.New(slog.DiscardHandler),
		HandlerMiddleware: []message.HandlerMiddleware{m.Middleware},
	})
	require.NoError(t, err)

	// flaky fails the first attempt of every event and succeeds on the
	// retry; broken always fails; invalid rejects every event at once.
	var flakySeen sync.Map
	var flakyDone atomic.Int64
	require.NoError(t, bus.Handle("flaky", "invoice.paid", func(_ context.Context, ev core.Event) error {
		if _, seen := flakySeen.LoadOrStore(ev.EventID, true); !seen {
			return errors.New("lock timeout")
		}
		flakyDone.Add(1)
		return nil
	}))
	require.NoError(t, bus.Handle("broken", "invoice.paid", func(context.Context, core.Event) error {
		return errors.New("ledger down")
	}))
	require.NoError(t, bus.Handle("invalid", "patient.registered", func(context.Context, core.Event) error {
		return core.Permanent(errors.New("missing birth date"))
	}))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.Run(ctx) }()
	<-bus.Running()

	for range 4 {
		ev, err := core.NewEvent("invoice.paid", "invoice", uuid.NewString(), map[string]int{"amount": 10})
		require.NoError(t, err)
		require.NoError(t, bus.Publish(context.Background(), ev))
	}
	ev, err := core.NewEvent("patient.registered", "patient", uuid.NewString(), map[string]string{"name": "Ana"})
	require.NoError(t, err)
	require.NoError(t, bus.Publish(context.Background(), ev))

	deadline := time.Now().Add(10 * time.Second)
	for {
		count, err := adapter.DLQ().Len(context.Background())
		require.NoError(t, err)
		if count == 5 && flakyDone.Load() == 4 {
			break
		}
		require.True(t, time.Now().Before(deadline), "timed out waiting for 5 dead letters and 4 flaky successes")
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	require.NoError(t, <-done)

	f := scrape(t, registry)
	attempts := "deadletter_handler_attempts_total"
	require.EqualValues(t, 4, value(t, f, attempts, map[string]string{"handler": "flaky", "event_type": "invoice.paid", "outcome": "failure"}))
	require.EqualValues(t, 4, value(t, f, attempts, map[string]string{"handler": "flaky", "event_type": "invoice.paid", "outcome": "success"}))
	require.EqualValues(t, 12, value(t, f, attempts, map[string]string{"handler": "broken", "event_type": "invoice.paid", "outcome": "failure"}),
		"4 events x 3 attempts")
	require.EqualValues(t, 1, value(t, f, attempts, map[string]string{"handler": "invalid", "event_type": "patient.registered", "outcome": "permanent"}))

	retries := "deadletter_handler_retries_total"
	require.EqualValues(t, 4, value(t, f, retries, map[string]string{"handler": "flaky", "event_type": "invoice.paid", "outcome": "success"}),
		"every flaky retry succeeds")
	require.EqualValues(t, 8, value(t, f, retries, map[string]string{"handler": "broken", "event_type": "invoice.paid", "outcome": "failure"}))

	dead := "deadletter_dead_lettered_total"
	require.EqualValues(t, 4, value(t, f, dead, map[string]string{"handler": "broken", "event_type": "invoice.paid", "error_type": "failure"}))
	require.EqualValues(t, 1, value(t, f, dead, map[string]string{"handler": "invalid", "event_type": "patient.registered", "error_type": "permanent"}))

	require.EqualValues(t, 12, value(t, f, "deadletter_handler_duration_seconds",
		map[string]string{"handler": "broken", "event_type": "invoice.paid"}), "one observation per attempt")
	require.EqualValues(t, 4, value(t, f, "deadletter_publish_duration_seconds", map[string]string{"event_type": "invoice.paid"}))
	require.EqualValues(t, 4, value(t, f, "deadletter_published_events_total", map[string]string{"event_type": "invoice.paid", "outcome": "ok"}))

	require.EqualValues(t, 1, value(t, f, "deadletter_dlq_up", map[string]string{}))
	require.EqualValues(t, 5, value(t, f, "deadletter_dlq_entries", map[string]string{}))
	require.EqualValues(t, 0, value(t, f, "deadletter_dlq_dropped_total", map[string]string{}))
	require.EqualValues(t, 4, value(t, f, "deadletter_dlq_recent_entries_by_handler", map[string]string{"handler": "broken"}))
	require.EqualValues(t, 1, value(t, f, "deadletter_dlq_recent_entries_by_event_type", map[string]string{"event_type": "patient.registered"}))
}

func TestInstrumentDLQ(t *testing.T) {
	m, err := metrics.New(metrics.Config{Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	adapter, err := memory.New(memory.Config{})
	require.NoError(t, err)
	defer adapter.Close()

	_, replays := m.InstrumentDLQ(adapter.DLQ()).(core.Replayer)
	require.True(t, replays, "a DLQ that replays still does when instrumented")

	_, replays = m.InstrumentDLQ(plainDLQ{adapter.DLQ()}).(core.Replayer)
	require.False(t, replays, "a DLQ that cannot replay does not claim to")
}

// plainDLQ hides every method but those of core.DLQ.
type plainDLQ struct{ core.DLQ }

func TestMiddlewareRecordsPanic(t *testing.T) {
	registry := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Config{Registerer: registry})
	require.NoError(t, err)

	handler := m.Middleware(func(*message.Message) ([]*message.Message, error) { panic("boom") })
	msg := message.NewMessage("1", []byte(`{"event_type":"a.b"}`))
	msg.SetContext(context.Background())
	require.PanicsWithValue(t, "boom", func() { _, _ = handler(msg) }, "the panic goes on to the recoverer")

	f := scrape(t, registry)
	require.EqualValues(t, 1, value(t, f, "deadletter_handler_attempts_total",
		map[string]string{"handler": "", "event_type": "a.b", "outcome": "panic"}))
}

func TestNewRejectsDuplicateRegistration(t *testing.T) {
	registry := prometheus.NewRegistry()
	_, err := metrics.New(metrics.Config{Registerer: registry})
	require.NoError(t, err)
	_, err = metrics.New(metrics.Config{Registerer: registry})
	require.ErrorIs(t, err, core.ErrInvalidConfig)
}
