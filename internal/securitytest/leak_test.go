package securitytest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/config"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/metrics"
	"github.com/deadletter/deadletter/monitor"
)

// eventType is the type of every event the tests publish.
const eventType = "patient.registered"

// waitTimeout bounds each wait for the handlers, the DLQ or a replay.
const waitTimeout = 30 * time.Second

// The failing run publishes a number of valid events, which each of the
// failing handlers dead-letters, and the messages of hostilePayloads, which
// every handler dead-letters.
const (
	events          = 4
	failingHandlers = 4
	handlers        = 6
)

// wantEntries is the number of entries the failing run leaves in the DLQ.
var wantEntries = int64(events*failingHandlers + len(hostileNames)*handlers)

// TestSecretsStayOutOfOutput runs a service whose handlers fail in every
// way, the monitor with each alert sink, and the operator's commands, on
// Redis and on NATS servers that require a password. No log line at any
// level, error, alert or command output may show an event's data, a
// metadata value, the broker's password or a sink's secret. The opt-ins
// are checked to show what they reveal: dlq show prints the event data by
// design, and the PagerDuty request carries its routing key to PagerDuty.
//
// A handler's own error message is copied as it is into logs, entries and
// alerts, so the handlers here keep personal data out of theirs. The
// canary in their messages shows that each output was captured.
func TestSecretsStayOutOfOutput(t *testing.T) {
	clearConfigEnv(t)
	t.Run("Redis", func(t *testing.T) { testSecretsStayOut(t, startRedisBroker) })
	t.Run("NATS", func(t *testing.T) { testSecretsStayOut(t, startNATSBroker) })
}

func testSecretsStayOut(t *testing.T, start func(*testing.T, secrets) broker) {
	s := newSecrets()
	b := start(t, s)
	tr := newTranscript()
	var logs lockedBuffer
	logger := captureLogs(t, &logs)

	prefix := b.prefix()
	adapter, err := b.newAdapter(b.url, prefix, logger)
	require.NoError(t, err)
	defer adapter.Close()

	registry := prometheus.NewRegistry()
	svc := startService(t, adapter, logger, registry, s)
	publishFailingEvents(t, svc, adapter, s, tr)
	waitForEntries(t, adapter.DLQ(), wantEntries, 0)
	require.Eventually(t, func() bool { return svc.succeeded.Load() == events }, waitTimeout, 10*time.Millisecond,
		"audit_log handles each valid event")

	sinks := newSinkReceivers(t, s)
	checkMonitor(t, adapter.DLQ(), logger, sinks, s, tr)
	scrapeMetrics(t, adapter.DLQ(), logger, registry, tr)
	runOperatorCommands(t, b, prefix, adapter.DLQ(), sinks, s, tr)
	loseBroker(t, b, adapter.DLQ(), tr)

	svc.stop()
	tr.add("log", logs.String())

	tr.requireCanary(t, s, "log", "monitor.Alert", "Slack request bodies", "webhook request bodies",
		"PagerDuty request bodies", "deadletter dlq list stdout", "deadletter dlq stats stdout",
		"deadletter dlq stats --json stdout", "deadletter monitor --once --json stdout")
	require.Contains(t, tr.text("deadletter dlq show stdout"), s.payload,
		"dlq show prints the event data, so the marker reached the DLQ")
	require.Contains(t, tr.text("deadletter dlq show --json stdout"), s.payload)
	require.Contains(t, tr.text("PagerDuty request bodies"), s.routingKey,
		"the PagerDuty sink sends its routing key to PagerDuty")
	tr.requireNoSecrets(t, s, map[string][]string{
		s.payload:    {"deadletter dlq show stdout", "deadletter dlq show --json stdout"},
		s.routingKey: {"PagerDuty request bodies"},
	})
}

// clearConfigEnv unsets every environment variable that the CLI reads, so
// that the machine's settings do not choose another broker.
func clearConfigEnv(t *testing.T) {
	t.Setenv(config.EnvConfigFile, "")
	for _, k := range config.Keys() {
		if k.Env != "" {
			t.Setenv(k.Env, "")
		}
	}
}

// captureLogs returns a logger that writes every line to buf, and makes it
// the default logger and go-redis's logger until the test ends.
func captureLogs(t *testing.T, buf *lockedBuffer) *slog.Logger {
	logger := newCapturingLogger(buf)
	previous := slog.Default()
	slog.SetDefault(logger)
	t.Cleanup(func() { slog.SetDefault(previous) })
	redis.SetLogger(redisLogger{logger})
	return logger
}

// redisLogger passes go-redis's own log lines to slog.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}

// service is a running bus whose handlers fail in each way a handler can.
type service struct {
	bus       *deadletter.Bus
	succeeded atomic.Int64
	stop      func()
}

func startService(t *testing.T, adapter core.Adapter, logger *slog.Logger, registry *prometheus.Registry,
	s secrets) *service {
	m, err := metrics.New(metrics.Config{Registerer: registry})
	require.NoError(t, err)
	bus, err := deadletter.New(deadletter.Config{
		Adapter:           adapter,
		Policy:            core.Policy{MaxRetries: 2, Initial: 5 * time.Millisecond},
		Logger:            logger,
		CloseTimeout:      5 * time.Second,
		HandlerMiddleware: []message.HandlerMiddleware{m.Middleware},
	})
	require.NoError(t, err)
	svc := &service{bus: bus}

	require.NoError(t, bus.Handle("send_email", eventType, func(_ context.Context, ev core.Event) error {
		return fmt.Errorf("mail server refused the message for patient %s: %s", ev.AggregateID, s.errorCanary)
	}))
	require.NoError(t, bus.Handle("bill_patient", eventType, func(context.Context, core.Event) error {
		panic("billing record missing: " + s.errorCanary)
	}))
	require.NoError(t, bus.Handle("index_patient", eventType, func(ctx context.Context, _ core.Event) error {
		<-ctx.Done()
		return ctx.Err()
	}, deadletter.WithPolicy(core.Policy{MaxRetries: 1, Initial: 5 * time.Millisecond, Timeout: 20 * time.Millisecond})))
	require.NoError(t, bus.Handle("validate_patient", eventType, func(context.Context, core.Event) error {
		return core.Permanent(errors.New("patient record rejected by validation: " + s.errorCanary))
	}))
	require.NoError(t, bus.Handle("audit_log", eventType, func(context.Context, core.Event) error {
		svc.succeeded.Add(1)
		return nil
	}))
	require.NoError(t, bus.Handle("dedupe", eventType, func(context.Context, core.Event) error {
		return core.Skip(errors.New("event already handled"))
	}))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.Run(ctx) }()
	<-bus.Running()
	svc.stop = func() {
		cancel()
		require.NoError(t, <-done)
	}
	t.Cleanup(cancel)
	return svc
}

// hostileNames name the messages of hostilePayloads.
var hostileNames = []string{"not JSON", "invalid aggregate_id", "data not an object", "cut short", "bare word",
	"personal data as aggregate_id", "personal data as occurred_at", "long occurred_at", "occurred_at not a string",
	"long event_id", "long event_type", "event_type not a string"}

// hostilePayloads returns messages that are not valid events, each with the
// payload marker where personal data would be. Decode errors show an
// excerpt of event_id and event_type, so in those fields the marker
// follows padding longer than the excerpt.
func hostilePayloads(s secrets) [][]byte {
	eventID := `"event_id":"` + uuid.NewString() + `",`
	head := `{"event_type":"` + eventType + `",` + eventID + `"aggregate_type":"patient",`
	aggregate := `"aggregate_id":"` + uuid.NewString() + `",`
	const occurred = `,"occurred_at":"2024-05-01T10:00:00Z"}`
	const data = `"data":{"name":"Ana"}`
	pad := strings.Repeat("x", 80)
	return [][]byte{
		[]byte(s.payload),
		[]byte(head + `"aggregate_id":"not-a-uuid","data":{"name":"` + s.payload + `"}` + occurred),
		[]byte(head + aggregate + `"data":"` + s.payload + `"` + occurred),
		[]byte(head + aggregate + `"data":{"name":"` + s.payload),
		[]byte(head + aggregate + `"data":{"name":` + s.payload + `}` + occurred),
		[]byte(head + `"aggregate_id":"` + s.payload + `@example.org",` + data + occurred),
		[]byte(head + aggregate + data + `,"occurred_at":"2024-05-01T10:00:00Z ` + s.payload + `"}`),
		[]byte(head + aggregate + data + `,"occurred_at":"` + strings.Repeat(s.payload, 4<<10) + `"}`),
		[]byte(head + aggregate + data + `,"occurred_at":["` + s.payload + `"]}`),
		[]byte(`{"event_type":"` + eventType + `","event_id":"` + pad + s.payload + `","aggregate_type":"patient",` +
			aggregate + data + occurred),
		[]byte(`{"event_type":"` + eventType + "." + pad + " " + s.payload + `",` + eventID +
			`"aggregate_type":"patient",` + aggregate + data + occurred),
		[]byte(`{"event_type":{"name":"` + s.payload + `"},` + eventID + `"aggregate_type":"patient",` +
			aggregate + data + occurred),
	}
}

// publishFailingEvents publishes the events with personal data, a message
// with personal data in its metadata, and the hostile messages. It records
// the errors of events that are rejected before publishing.
func publishFailingEvents(t *testing.T, svc *service, adapter core.Adapter, s secrets, tr *transcript) {
	ctx := context.Background()
	data := map[string]string{"name": s.payload, "note": "allergic to penicillin, says " + s.payload}
	for range events - 1 {
		ev, err := core.NewEvent(eventType, "patient", uuid.NewString(), data)
		require.NoError(t, err)
		require.NoError(t, svc.bus.Publish(ctx, ev))
	}

	// Another publisher puts personal data in a metadata value.
	ev, err := core.NewEvent(eventType, "patient", uuid.NewString(), data)
	require.NoError(t, err)
	payload, err := ev.Marshal()
	require.NoError(t, err)
	msg := message.NewMessage(uuid.NewString(), payload)
	msg.Metadata.Set("patient_name", s.metadata)
	require.NoError(t, adapter.Publisher().Publish(eventType, msg))

	for i, raw := range hostilePayloads(s) {
		require.NoError(t, adapter.Publisher().Publish(eventType, message.NewMessage(uuid.NewString(), raw)))
		_, err := core.DecodeEvent(raw)
		tr.addError(t, "core.DecodeEvent error of "+hostileNames[i], err)
	}

	// Events that fail validation never reach the broker.
	invalid := ev
	invalid.Data = json.RawMessage(s.payload)
	tr.addError(t, "Bus.Publish error", svc.bus.Publish(ctx, invalid))
	invalid.Data = json.RawMessage(`["` + s.payload + `"]`)
	tr.addError(t, "Bus.Publish error", svc.bus.Publish(ctx, invalid))
	_, err = core.NewEvent(eventType, "patient", uuid.NewString(), map[string]any{"name": s.payload, "f": func() {}})
	tr.addError(t, "core.NewEvent error", err)
}

// waitForEntries waits until the DLQ holds want entries and its replayed
// store at least replayed.
func waitForEntries(t *testing.T, dlq core.DLQ, want int64, replayed int) {
	t.Helper()
	ctx := context.Background()
	require.Eventually(t, func() bool {
		n, err := dlq.Len(ctx)
		if err != nil || n != want {
			return false
		}
		if replayed == 0 {
			return true
		}
		moved, err := dlq.List(ctx, core.ListOptions{Replayed: true, Limit: replayed})
		return err == nil && len(moved) == replayed
	}, waitTimeout, 10*time.Millisecond, "the DLQ should hold %d entries and %d replayed ones", want, replayed)
}

// sinkReceivers are the loopback servers that stand for Slack, a webhook
// receiver and PagerDuty, and the sink URLs that fail.
type sinkReceivers struct {
	slack, webhook, pagerDuty, refusing *receiver

	// Nothing listens at deadURL, and badURLs do not parse.
	deadURL string
	badURLs []string
}

func newSinkReceivers(t *testing.T, s secrets) sinkReceivers {
	return sinkReceivers{
		slack:     newReceiver(t, http.StatusOK),
		webhook:   newReceiver(t, http.StatusOK),
		pagerDuty: newReceiver(t, http.StatusAccepted),
		refusing:  newReceiver(t, http.StatusInternalServerError),
		deadURL:   "http://user:" + s.hook + "@127.0.0.1:" + strconv.Itoa(freePort(t)) + "/hooks/" + s.hook,
		badURLs: []string{
			"http://127.0.0.1:1/hooks/%zz" + s.hook,
			"http://user:" + s.hook + "/x@127.0.0.1:1/hooks/",
		},
	}
}

// checkMonitor runs one check of a monitor with every sink, working and
// failing, and records the alert.
func checkMonitor(t *testing.T, dlq core.DLQ, logger *slog.Logger, r sinkReceivers, s secrets, tr *transcript) {
	m, err := monitor.New(monitor.Config{
		DLQ: dlq, Source: "security-test", WarningThreshold: 5, CriticalThreshold: 10, Capacity: -1,
		Logger: logger,
		Sinks: []monitor.Sink{
			&monitor.SlackSink{WebhookURL: r.slack.URL + "/services/" + s.hook},
			&monitor.WebhookSink{URL: r.webhook.URL + "/hooks/" + s.hook},
			&monitor.PagerDutySink{RoutingKey: s.routingKey, URL: r.pagerDuty.URL},
			&monitor.WebhookSink{URL: r.refusing.URL + "/hooks/" + s.hook},
			&monitor.WebhookSink{URL: r.deadURL},
			&monitor.SlackSink{WebhookURL: r.badURLs[0]},
			&monitor.WebhookSink{URL: r.badURLs[1]},
		},
	})
	require.NoError(t, err)

	alert, err := m.Check(context.Background())
	require.NoError(t, err)
	require.Equal(t, monitor.LevelCritical, alert.Level)
	raw, err := json.Marshal(alert)
	require.NoError(t, err)
	tr.add("monitor.Alert", string(raw))
	tr.add("monitor.Alert", alert.Title()+"\n"+strings.Join(alert.Details(), "\n"))

	require.Equal(t, 1, r.slack.postCount(), "the Slack sink posts the critical alert")
	require.Equal(t, 1, r.webhook.postCount(), "the webhook sink posts the critical alert")
	require.Equal(t, 1, r.pagerDuty.postCount(), "the PagerDuty sink posts the critical alert")
	require.Equal(t, 1, r.refusing.postCount(), "the refusing receiver gets the alert")
}

// scrapeMetrics records what a Prometheus scrape of the handler metrics
// and the DLQ collector returns, as deadletter serve exposes it.
func scrapeMetrics(t *testing.T, dlq core.DLQ, logger *slog.Logger, registry *prometheus.Registry,
	tr *transcript) {
	registry.MustRegister(metrics.NewDLQCollector(metrics.DLQCollectorConfig{DLQ: dlq, Logger: logger}))
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(registry, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.True(t, strings.Contains(rec.Body.String(), `handler="bill_patient",outcome="panic"`),
		"the scrape counts the panics")
	tr.add("/metrics", rec.Body.String())
}

// runOperatorCommands runs the operator's commands against the DLQ through
// the broker URL with its password, and records their output.
func runOperatorCommands(t *testing.T, b broker, prefix string, dlq core.DLQ, r sinkReceivers, s secrets,
	tr *transcript) {
	flags := b.flags(b.url, prefix)
	cmd := func(name string, args ...string) (int, string) {
		words := strings.Fields(name)
		code, stdout, stderr := runCLI(tr, name, append(append(words, args...), flags...)...)
		require.NotContains(t, stderr, "deadletter: ", "%s failed", name)
		return code, stdout
	}

	// Without --broker the command chooses the broker from the URL given.
	code, _, stderr := runCLI(tr, "dlq stats", "dlq", "stats", b.urlFlag, b.url, "--prefix", prefix)
	require.Equal(t, 0, code, stderr)
	describeBroker(t, b, prefix, tr)

	code, out := cmd("dlq stats --json")
	require.Equal(t, 0, code)
	require.Contains(t, out, `"total": `+strconv.FormatInt(wantEntries, 10))
	code, _ = cmd("dlq list", "--limit", "100")
	require.Equal(t, 0, code)
	code, _ = cmd("dlq list --json", "--limit", "100")
	require.Equal(t, 0, code)
	code, out = cmd("dlq list", "--limit", "1", "--handler", "send_email")
	require.Equal(t, 0, code)
	require.Contains(t, out, "more: deadletter dlq list", "the next page hint repeats the broker URL")

	// A replay sends the entries back to a handler that fails again.
	code, out = cmd("dlq replay", "--handler", "validate_patient", "--rate", "-1")
	require.Equal(t, 0, code)
	require.Contains(t, out, fmt.Sprintf("replayed %d of %d", events, events))
	waitForEntries(t, dlq, wantEntries, events)
	code, _ = cmd("dlq list", "--replayed")
	require.Equal(t, 0, code)
	code, _ = cmd("dlq replay", "--all", "--dry-run")
	require.Equal(t, 0, code)
	code, _ = cmd("dlq delete", "--handler", "bill_patient", "--dry-run")
	require.Equal(t, 0, code)

	t.Setenv("DEADLETTER_PAGERDUTY_ROUTING_KEY", s.routingKey)
	code, _ = cmd("monitor --once --json", "--warning", "5", "--critical", "10", "--capacity", "-1",
		"--log-level", "debug",
		"--slack-webhook-url", r.slack.URL+"/services/"+s.hook,
		"--webhook-url", r.webhook.URL+"/hooks/"+s.hook,
		"--pagerduty-url", r.pagerDuty.URL)
	require.Equal(t, 3, code, "critical")
	code, _ = cmd("monitor --once", "--warning", "5", "--critical", "10", "--log-level", "debug",
		"--webhook-url", r.deadURL)
	require.Equal(t, 3, code, "critical, with the failed sink logged")
	tr.add("Slack request bodies", r.slack.bodies.String())
	tr.add("webhook request bodies", r.webhook.bodies.String())
	tr.add("PagerDuty request bodies", r.pagerDuty.bodies.String())
	tr.add("refusing receiver request bodies", r.refusing.bodies.String())

	// dlq show prints an entry whole, event data included: that is the
	// command's purpose, and the one place the data is shown.
	entries, err := dlq.List(context.Background(), core.ListOptions{Limit: 100})
	require.NoError(t, err)
	id := ""
	for _, e := range entries {
		if e.Handler == "send_email" {
			id = e.ID
			break
		}
	}
	require.NotEmpty(t, id)
	code, _ = cmd("dlq show", id)
	require.Equal(t, 0, code)
	code, _ = cmd("dlq show --json", id)
	require.Equal(t, 0, code)
}

// describeBroker records how the config package describes the broker to
// people: the line that commands print when they guessed it, and the
// command that inspects the DLQ.
func describeBroker(t *testing.T, b broker, prefix string, tr *transcript) {
	cfg, err := config.Load(config.Sources{
		LookupEnv: func(string) (string, bool) { return "", false },
		Flags: []config.Setting{
			{Key: b.name + ".url", Value: b.url, Origin: b.urlFlag},
			{Key: "prefix", Value: prefix, Origin: "--prefix"},
		},
	})
	require.NoError(t, err)
	opened, err := config.Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer opened.Close()
	require.Contains(t, opened.Describe(), "127.0.0.1:")
	tr.add("config.Broker", opened.Describe()+"\n"+opened.Address+"\n"+opened.InspectHint)
	tr.add("config.Config", fmt.Sprintf("%v\n%+v\n%#v", cfg, cfg, cfg))
}

// loseBroker stops the server under the running service and waits until
// a read of the DLQ fails, whose error it records. The adapters log the
// failures of their own reads meanwhile.
func loseBroker(t *testing.T, b broker, dlq core.DLQ, tr *transcript) {
	b.stop()
	var lenErr error
	require.Eventually(t, func() bool {
		// The clients retry for seconds before they give up on a read.
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		defer cancel()
		_, lenErr = dlq.Len(ctx)
		return lenErr != nil
	}, waitTimeout, 10*time.Millisecond, "a read of the DLQ fails once the broker is gone")
	tr.add("DLQ.Len error with the broker gone", lenErr.Error())
}
