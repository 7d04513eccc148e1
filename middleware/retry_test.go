package middleware_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/deadletter/deadletter/adapters/memory"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/middleware"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	topic       = "patient.registered"
	handlerName = "send_welcome_email"
	waitTimeout = 5 * time.Second

	// payloadMarker is planted in every test event's data, so that a test
	// can assert that no log line contains the payload.
	payloadMarker = "PAYLOAD-MARKER-4f1c9e"
)

var errMailServer = errors.New("mail server timed out")

// logBuffer collects JSON log lines written by concurrent handlers.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// records returns the log lines whose message is msg, parsed.
func (l *logBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var found []map[string]any
	for line := range strings.Lines(l.String()) {
		var record map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &record), "log line %q", line)
		if record[slog.MessageKey] == msg {
			found = append(found, record)
		}
	}
	return found
}

// flakyDLQ wraps a DLQ and fails the first failures calls to Add, as a DLQ
// on a broker that is down would.
type flakyDLQ struct {
	core.DLQ
	failures atomic.Int32
	adds     atomic.Int32
}

var errDLQDown = errors.New("write dlq entry: connection refused")

func (f *flakyDLQ) Add(ctx context.Context, e core.Entry) (string, error) {
	f.adds.Add(1)
	if f.failures.Add(-1) >= 0 {
		return "", errDLQDown
	}
	return f.DLQ.Add(ctx, e)
}

// fixture is a Retry with a real in-memory DLQ and captured logs.
type fixture struct {
	retry *middleware.Retry
	dlq   *flakyDLQ
	logs  *logBuffer
}

func newFixture(t *testing.T, policy core.Policy) *fixture {
	t.Helper()
	adapter, err := memory.New(memory.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, adapter.Close()) })

	f := &fixture{dlq: &flakyDLQ{DLQ: adapter.DLQ()}, logs: &logBuffer{}}
	logger := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{
		Level:       slog.LevelDebug,
		ReplaceAttr: core.ReplaceLevelName,
	}))
	f.retry, err = middleware.NewRetry(middleware.RetryConfig{
		Handler:       handlerName,
		Policy:        policy,
		DLQ:           f.dlq,
		DLQRetryPause: 15 * time.Millisecond,
		Logger:        logger,
	})
	require.NoError(t, err)
	return f
}

// entries returns the DLQ's entries, oldest first.
func (f *fixture) entries(t *testing.T) []core.Entry {
	t.Helper()
	entries, err := f.dlq.List(context.Background(), core.ListOptions{})
	require.NoError(t, err)
	for i, j := 0, len(entries)-1; i < j; i, j = i+1, j-1 {
		entries[i], entries[j] = entries[j], entries[i]
	}
	return entries
}

// onlyEntry returns the DLQ's single entry.
func (f *fixture) onlyEntry(t *testing.T) core.Entry {
	t.Helper()
	entries := f.entries(t)
	require.Len(t, entries, 1, "dlq entries")
	return entries[0]
}

// requireNoPayloadLogged fails if any log line contains the event data.
func (f *fixture) requireNoPayloadLogged(t *testing.T) {
	t.Helper()
	require.NotContains(t, f.logs.String(), payloadMarker, "a log line contains the event payload")
}

func newEvent(t *testing.T) (core.Event, []byte) {
	t.Helper()
	ev, err := core.NewEvent(topic, "patient", uuid.NewString(),
		map[string]string{"name": payloadMarker, "ward": "cardiology"})
	require.NoError(t, err)
	raw, err := ev.Marshal()
	require.NoError(t, err)
	return ev, raw
}

// calls records when a handler ran and hands out its scripted results.
type calls struct {
	mu    sync.Mutex
	times []time.Time
}

func (c *calls) record() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.times = append(c.times, time.Now())
	return len(c.times)
}

func (c *calls) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.times)
}

// gaps returns the pauses between consecutive calls.
func (c *calls) gaps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var gaps []time.Duration
	for i := 1; i < len(c.times); i++ {
		gaps = append(gaps, c.times[i].Sub(c.times[i-1]))
	}
	return gaps
}

// script returns a handler that returns results[n-1] on its nth call, and
// nil once the results run out.
func (c *calls) script(results ...error) message.HandlerFunc {
	return func(*message.Message) ([]*message.Message, error) {
		n := c.record()
		if n <= len(results) {
			return nil, results[n-1]
		}
		return nil, nil
	}
}

func repeat(err error, times int) []error {
	errs := make([]error, times)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// runInPlace publishes payload on a Watermill GoChannel, which sets no
// delivery count, to a router running h behind the fixture's Retry. It
// returns the error the wrapped handler returned for the first delivery.
func (f *fixture) runInPlace(t *testing.T, h message.HandlerFunc, payload []byte) error {
	t.Helper()
	pubSub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	require.NoError(t, err)

	results := make(chan error, 1)
	wrapped := f.retry.Middleware(h)
	router.AddConsumerHandler("in_place", topic, pubSub, func(msg *message.Message) error {
		_, err := wrapped(msg)
		select {
		case results <- err:
		default:
		}
		return err
	})

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- router.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-stopped)
		require.NoError(t, pubSub.Close())
	}()
	select {
	case <-router.Running():
	case <-time.After(waitTimeout):
		require.FailNow(t, "router did not start")
	}

	require.NoError(t, pubSub.Publish(topic, message.NewMessage(uuid.NewString(), payload)))
	select {
	case err := <-results:
		return err
	case <-time.After(waitTimeout):
		require.FailNow(t, "handler did not finish")
		return nil
	}
}

// requireEntryFields checks the contract of every dead letter entry: the
// eight required fields present, the event data unchanged and failed_at in
// UTC.
func requireEntryFields(t *testing.T, entry core.Entry, ev core.Event, raw []byte) {
	t.Helper()
	fields := map[string]string{}
	pairs := entry.Fields()
	for i := 0; i+1 < len(pairs); i += 2 {
		fields[pairs[i]] = pairs[i+1]
	}
	for _, name := range core.RequiredFields {
		require.NotEmpty(t, fields[name], "entry field %s", name)
	}

	require.Equal(t, raw, entry.EventData, "event_data is not the event's JSON byte for byte")
	require.Equal(t, handlerName, entry.Handler)
	require.Equal(t, ev.EventType, entry.EventType)
	require.Equal(t, ev.EventID, entry.EventID)
	require.Equal(t, ev.AggregateType, entry.AggregateType)
	require.Equal(t, ev.AggregateID, entry.AggregateID)
	require.Equal(t, time.UTC, entry.FailedAt.Location(), "failed_at is not UTC")
	require.True(t, strings.HasSuffix(fields[core.FieldFailedAt], "Z"), "failed_at %q", fields[core.FieldFailedAt])
	require.WithinDuration(t, time.Now(), entry.FailedAt, time.Minute)
}

func TestNewRetry(t *testing.T) {
	dlq := &flakyDLQ{}

	t.Run("RejectsMissingHandler", func(t *testing.T) {
		_, err := middleware.NewRetry(middleware.RetryConfig{DLQ: dlq})
		require.ErrorIs(t, err, core.ErrInvalidConfig)
	})

	t.Run("RejectsMissingDLQ", func(t *testing.T) {
		_, err := middleware.NewRetry(middleware.RetryConfig{Handler: handlerName})
		require.ErrorIs(t, err, core.ErrInvalidConfig)
	})

	t.Run("RejectsInvalidPolicy", func(t *testing.T) {
		_, err := middleware.NewRetry(middleware.RetryConfig{
			Handler: handlerName, DLQ: dlq, Policy: core.Policy{Multiplier: 0.5},
		})
		require.ErrorIs(t, err, core.ErrInvalidPolicy)
	})

	t.Run("RejectsNegativeDLQRetryPause", func(t *testing.T) {
		_, err := middleware.NewRetry(middleware.RetryConfig{
			Handler: handlerName, DLQ: dlq, DLQRetryPause: -time.Second,
		})
		require.ErrorIs(t, err, core.ErrInvalidConfig)
	})

	t.Run("FillsPolicyDefaults", func(t *testing.T) {
		retry, err := middleware.NewRetry(middleware.RetryConfig{Handler: handlerName, DLQ: dlq})
		require.NoError(t, err)
		require.Equal(t, core.DefaultPolicy(), retry.Policy())
	})
}

func TestRetryInPlace(t *testing.T) {
	t.Run("DeadLettersAfterScaledPauses", func(t *testing.T) {
		policy := core.Policy{MaxRetries: 3, Initial: 10 * time.Millisecond, Multiplier: 2}
		f := newFixture(t, policy)
		ev, raw := newEvent(t)
		var c calls

		err := f.runInPlace(t, c.script(repeat(errMailServer, 10)...), raw)
		require.NoError(t, err)

		require.Equal(t, 4, c.count(), "handler calls: 1 attempt + 3 retries")
		for i, gap := range c.gaps() {
			require.GreaterOrEqual(t, gap, policy.Pause(i+1), "pause before retry %d", i+1)
		}
		entry := f.onlyEntry(t)
		requireEntryFields(t, entry, ev, raw)
		require.Equal(t, errMailServer.Error(), entry.Error)
		require.Equal(t, 4, entry.Attempts)
		require.Equal(t, core.ErrorTypeFailure, entry.ErrorType)
		require.False(t, entry.FirstFailedAt.After(entry.FailedAt), "first_failed_at after failed_at")
		f.requireNoPayloadLogged(t)
	})

	t.Run("SucceedsAfterTwoFailures", func(t *testing.T) {
		f := newFixture(t, core.Policy{Initial: time.Millisecond})
		_, raw := newEvent(t)
		var c calls

		require.NoError(t, f.runInPlace(t, c.script(errMailServer, errMailServer), raw))
		require.Equal(t, 3, c.count())
		require.Empty(t, f.entries(t))
		succeeded := f.logs.records(t, "handler succeeded")
		require.Len(t, succeeded, 1)
		require.Equal(t, "DEBUG", succeeded[0][slog.LevelKey])
		require.EqualValues(t, 2, succeeded[0][core.LogRetryAttempt])
	})

	t.Run("PermanentErrorSkipsRetries", func(t *testing.T) {
		f := newFixture(t, core.Policy{Initial: time.Millisecond})
		ev, raw := newEvent(t)
		var c calls

		err := f.runInPlace(t, c.script(core.Permanent(errors.New("ward code is invalid"))), raw)
		require.NoError(t, err)
		require.Equal(t, 1, c.count())
		entry := f.onlyEntry(t)
		requireEntryFields(t, entry, ev, raw)
		require.Equal(t, core.ErrorTypePermanent, entry.ErrorType)
		require.Equal(t, "ward code is invalid", entry.Error)
		require.Equal(t, 1, entry.Attempts)
	})

	t.Run("SkipAcksWithoutEntry", func(t *testing.T) {
		f := newFixture(t, core.Policy{Initial: time.Millisecond})
		_, raw := newEvent(t)
		var c calls

		err := f.runInPlace(t, c.script(core.Skip(errors.New("welcome email already sent"))), raw)
		require.NoError(t, err)
		require.Equal(t, 1, c.count())
		require.Empty(t, f.entries(t))
		skipped := f.logs.records(t, "handler skipped event")
		require.Len(t, skipped, 1)
		require.Equal(t, "INFO", skipped[0][slog.LevelKey])
	})

	t.Run("HonoursRetryAfter", func(t *testing.T) {
		f := newFixture(t, core.Policy{Initial: time.Millisecond})
		_, raw := newEvent(t)
		var c calls
		const asked = 60 * time.Millisecond

		require.NoError(t, f.runInPlace(t, c.script(core.RetryAfter(errMailServer, asked)), raw))
		require.Equal(t, 2, c.count())
		require.GreaterOrEqual(t, c.gaps()[0], asked)

		scheduled := f.logs.records(t, "retry scheduled")
		require.Len(t, scheduled, 1)
		require.EqualValues(t, asked, scheduled[0][core.LogDelay])
	})

	t.Run("CapsRetryAfterAtMaxInterval", func(t *testing.T) {
		const maxInterval = 30 * time.Millisecond
		f := newFixture(t, core.Policy{Initial: time.Millisecond, MaxInterval: maxInterval})
		_, raw := newEvent(t)
		var c calls

		require.NoError(t, f.runInPlace(t, c.script(core.RetryAfter(errMailServer, time.Hour)), raw))
		require.Equal(t, 2, c.count())
		require.GreaterOrEqual(t, c.gaps()[0], maxInterval)
		require.Less(t, c.gaps()[0], waitTimeout)

		scheduled := f.logs.records(t, "retry scheduled")
		require.Len(t, scheduled, 1)
		require.EqualValues(t, maxInterval, scheduled[0][core.LogDelay])
	})

	t.Run("PanicIsDeadLetteredWithStack", func(t *testing.T) {
		f := newFixture(t, core.Policy{MaxRetries: 1, Initial: time.Millisecond})
		ev, raw := newEvent(t)
		var c calls

		err := f.runInPlace(t, func(*message.Message) ([]*message.Message, error) {
			c.record()
			panicInMailer()
			return nil, nil
		}, raw)
		require.NoError(t, err)

		require.Equal(t, 1, c.count(), "a panic must be dead-lettered after its one attempt")
		entry := f.onlyEntry(t)
		requireEntryFields(t, entry, ev, raw)
		require.Equal(t, core.ErrorTypePanic, entry.ErrorType)
		require.Contains(t, entry.Error, "panic: mailer template is nil")
		require.Contains(t, entry.Error, "panicInMailer", "stack missing from the entry's error")
		require.Contains(t, entry.Error, "goroutine")
	})

	t.Run("TimeoutIsDeadLetteredAsTimeout", func(t *testing.T) {
		f := newFixture(t, core.Policy{MaxRetries: -1, Timeout: 20 * time.Millisecond})
		ev, raw := newEvent(t)

		err := f.runInPlace(t, func(msg *message.Message) ([]*message.Message, error) {
			<-msg.Context().Done()
			return nil, msg.Context().Err()
		}, raw)
		require.NoError(t, err)

		entry := f.onlyEntry(t)
		requireEntryFields(t, entry, ev, raw)
		require.Equal(t, core.ErrorTypeTimeout, entry.ErrorType)
	})

	t.Run("TimeoutOfHandlerIgnoringContext", func(t *testing.T) {
		f := newFixture(t, core.Policy{MaxRetries: -1, Timeout: 20 * time.Millisecond})
		_, raw := newEvent(t)
		release := make(chan struct{})
		defer close(release)

		err := f.runInPlace(t, func(*message.Message) ([]*message.Message, error) {
			<-release
			return nil, nil
		}, raw)
		require.NoError(t, err)

		entry := f.onlyEntry(t)
		require.Equal(t, core.ErrorTypeTimeout, entry.ErrorType)
		require.Contains(t, entry.Error, core.ErrTimeout.Error())
	})

	t.Run("UndecodablePayloadIsDeadLetteredRaw", func(t *testing.T) {
		f := newFixture(t, core.Policy{Initial: time.Millisecond})
		raw := []byte("{\"event_type\": \"patient.registered\", \"name\": \"" + payloadMarker + "\" \xff")
		var c calls

		require.NoError(t, f.runInPlace(t, c.script(), raw))
		require.Zero(t, c.count(), "handler called for an undecodable message")
		entry := f.onlyEntry(t)
		require.Equal(t, raw, entry.EventData)
		require.Equal(t, core.ErrorTypeDecode, entry.ErrorType)
		require.Contains(t, entry.Error, core.ErrDecode.Error())
		require.Empty(t, entry.EventID)
		f.requireNoPayloadLogged(t)
	})

	t.Run("DecodeErrorHidesFieldValues", func(t *testing.T) {
		f := newFixture(t, core.Policy{Initial: time.Millisecond})
		ev, _ := newEvent(t)
		ev.OccurredAt = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
		raw, err := ev.Marshal()
		require.NoError(t, err)
		raw = bytes.Replace(raw, []byte(ev.AggregateID), []byte(payloadMarker+"-ana@example.org"), 1)
		raw = bytes.Replace(raw, []byte("2026-03-01T09:30:00Z"), bytes.Repeat([]byte(payloadMarker), 40<<10), 1)
		var c calls

		require.NoError(t, f.runInPlace(t, c.script(), raw))
		require.Zero(t, c.count(), "handler called for an invalid event")
		entry := f.onlyEntry(t)
		require.Equal(t, raw, entry.EventData)
		require.Equal(t, core.ErrorTypeDecode, entry.ErrorType)
		require.Contains(t, entry.Error, "occurred_at is not an RFC 3339 time")
		require.NotContains(t, entry.Error, payloadMarker, "the entry's error must not show field values")
		require.Less(t, len(entry.Error), 300, "the entry's error must stay short")
		require.Less(t, len(f.logs.String()), 4<<10, "the log lines must not grow with the message")
		f.requireNoPayloadLogged(t)
	})

	t.Run("CancelDuringPauseStopsRetrying", func(t *testing.T) {
		f := newFixture(t, core.Policy{Initial: time.Hour})
		ev, raw := newEvent(t)
		ctx, cancel := context.WithCancel(context.Background())
		msg := message.NewMessage(ev.EventID, raw)
		msg.SetContext(ctx)
		var c calls

		result := make(chan error, 1)
		go func() {
			_, err := f.retry.Middleware(c.script(errMailServer))(msg)
			result <- err
		}()
		require.Eventually(t, func() bool { return len(f.logs.records(t, "retry scheduled")) == 1 },
			waitTimeout, time.Millisecond)
		cancel()

		select {
		case err := <-result:
			require.ErrorIs(t, err, context.Canceled, "the router must nack the message")
		case <-time.After(waitTimeout):
			require.FailNow(t, "retry pause not cut short by cancellation")
		}
		require.Equal(t, 1, c.count())
		require.Empty(t, f.entries(t))
	})

	t.Run("FailedDLQWriteReturnsError", func(t *testing.T) {
		f := newFixture(t, core.Policy{MaxRetries: -1})
		f.dlq.failures.Store(1)
		ev, raw := newEvent(t)
		msg := message.NewMessage(ev.EventID, raw)
		var c calls

		_, err := f.retry.Middleware(c.script(errMailServer))(msg)
		require.ErrorIs(t, err, errDLQDown, "the router must nack the message")
		require.Empty(t, f.entries(t))

		critical := f.logs.records(t, "dead letter write failed; event left unacknowledged")
		require.Len(t, critical, 1)
		require.Equal(t, "CRITICAL", critical[0][slog.LevelKey])
	})

	t.Run("HeldBackDLQFailuresCountedOnRecovery", func(t *testing.T) {
		const failures = 5
		f := newFixture(t, core.Policy{MaxRetries: -1})
		f.dlq.failures.Store(failures)
		for range failures + 2 {
			ev, raw := newEvent(t)
			var c calls
			_, _ = f.retry.Middleware(c.script(errMailServer))(message.NewMessage(ev.EventID, raw))
		}
		require.Len(t, f.entries(t), 2)

		failed := f.logs.records(t, "dead letter write failed; event left unacknowledged")
		require.Len(t, failed, 1, "failed writes within a second must be logged once")
		require.EqualValues(t, 0, failed[0]["suppressed"])
		recovered := f.logs.records(t, "dead letter write succeeded after failed writes")
		require.Len(t, recovered, 1, "only the first write after the failures must say so")
		require.Equal(t, "WARN", recovered[0][slog.LevelKey])
		require.Equal(t, handlerName, recovered[0][core.LogHandler])
		require.EqualValues(t, failures-1, recovered[0]["suppressed"],
			"the line must count the failed writes that were not logged")
	})
}

//go:noinline
func panicInMailer() {
	panic("mailer template is nil")
}

func TestRetryLogs(t *testing.T) {
	policy := core.Policy{MaxRetries: 2, Initial: 5 * time.Millisecond}
	f := newFixture(t, policy)
	ev, raw := newEvent(t)
	var c calls

	require.NoError(t, f.runInPlace(t, c.script(repeat(errMailServer, 3)...), raw))

	identity := map[string]any{
		core.LogEventType:     ev.EventType,
		core.LogEventID:       ev.EventID,
		core.LogHandler:       handlerName,
		core.LogAggregateType: ev.AggregateType,
		core.LogAggregateID:   ev.AggregateID,
	}
	requireIdentity := func(t *testing.T, record map[string]any) {
		t.Helper()
		for key, want := range identity {
			require.Equal(t, want, record[key], "log field %s in %q", key, record[slog.MessageKey])
		}
	}

	t.Run("FailedAttemptsAtError", func(t *testing.T) {
		failed := f.logs.records(t, "handler attempt failed")
		require.Len(t, failed, 3)
		for i, record := range failed {
			requireIdentity(t, record)
			require.Equal(t, "ERROR", record[slog.LevelKey])
			require.EqualValues(t, i, record[core.LogRetryAttempt])
			require.Equal(t, errMailServer.Error(), record[core.LogError])
		}
	})

	t.Run("ScheduledRetriesAtWarning", func(t *testing.T) {
		scheduled := f.logs.records(t, "retry scheduled")
		require.Len(t, scheduled, 2)
		for i, record := range scheduled {
			requireIdentity(t, record)
			require.Equal(t, "WARN", record[slog.LevelKey])
			require.EqualValues(t, i+1, record[core.LogRetryAttempt])
			require.EqualValues(t, policy.Pause(i+1), record[core.LogDelay])
		}
	})

	t.Run("DeadLetterAtCritical", func(t *testing.T) {
		deadLettered := f.logs.records(t, "event dead-lettered")
		require.Len(t, deadLettered, 1)
		requireIdentity(t, deadLettered[0])
		require.Equal(t, "CRITICAL", deadLettered[0][slog.LevelKey])
		require.Equal(t, errMailServer.Error(), deadLettered[0][core.LogError])
		require.EqualValues(t, 3, deadLettered[0]["attempts"])
	})

	t.Run("NoPayload", func(t *testing.T) {
		f.requireNoPayloadLogged(t)
		require.NotContains(t, f.logs.String(), "cardiology")
	})
}
