package redisstream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	watermillmessage "github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/adapters/redisstream"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/testredis"
)

func newBus(t *testing.T, a core.Adapter, cfg deadletter.Config) *deadletter.Bus {
	t.Helper()
	cfg.Adapter = a
	if cfg.Policy == (core.Policy{}) {
		cfg.Policy = scaled
	}
	bus, err := deadletter.New(cfg)
	require.NoError(t, err)
	return bus
}

func dlqLen(t *testing.T, a core.Adapter) int64 {
	t.Helper()
	n, err := a.DLQ().Len(context.Background())
	require.NoError(t, err)
	return n
}

func TestRetriesDoNotBlockOtherEvents(t *testing.T) {
	a := newAdapter(t, testredis.Prefix())
	bus := newBus(t, a, deadletter.Config{Policy: core.Policy{Initial: 5 * time.Second}})

	failing := newEvent(t, "lab.result")
	var healthy atomic.Int32
	failedOnce := make(chan struct{})
	var once sync.Once
	require.NoError(t, bus.Handle("index", "lab.result", func(ctx context.Context, ev core.Event) error {
		if ev.EventID == failing.EventID {
			once.Do(func() { close(failedOnce) })
			return errors.New("search index unavailable")
		}
		healthy.Add(1)
		return nil
	}))
	runBus(t, bus)

	require.NoError(t, bus.Publish(context.Background(), failing))
	<-failedOnce
	start := time.Now()
	for range 20 {
		require.NoError(t, bus.Publish(context.Background(), newEvent(t, "lab.result")))
	}
	waitFor(t, "20 healthy events", func() bool { return healthy.Load() == 20 })
	require.Less(t, time.Since(start), 5*time.Second,
		"healthy events must not wait out the failing event's 5s pause")
}

func TestAttemptCountSurvivesRestart(t *testing.T) {
	prefix := testredis.Prefix()
	policy := core.Policy{Initial: 100 * time.Millisecond, Multiplier: 1}

	first := newAdapter(t, prefix)
	bus := newBus(t, first, deadletter.Config{Policy: policy})
	var before atomic.Int32
	require.NoError(t, bus.Handle("sync", "patient.registered", func(ctx context.Context, ev core.Event) error {
		before.Add(1)
		return errors.New("legacy system down")
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.Run(ctx) }()
	<-bus.Running()
	require.NoError(t, bus.Publish(context.Background(), newEvent(t, "patient.registered")))
	waitFor(t, "two attempts before the restart", func() bool { return before.Load() >= 2 })
	cancel()
	require.NoError(t, <-done)
	require.NoError(t, first.Close())
	made := int(before.Load())

	second := newAdapter(t, prefix)
	bus = newBus(t, second, deadletter.Config{Policy: policy})
	var after atomic.Int32
	require.NoError(t, bus.Handle("sync", "patient.registered", func(ctx context.Context, ev core.Event) error {
		after.Add(1)
		return errors.New("legacy system down")
	}))
	runBus(t, bus)

	waitFor(t, "dlq entry after the restart", func() bool { return dlqLen(t, second) == 1 })
	require.Equal(t, 4-made, int(after.Load()),
		"after %d attempts before the restart, only %d may follow it", made, 4-made)
	entries, err := second.DLQ().List(context.Background(), core.ListOptions{})
	require.NoError(t, err)
	require.Equal(t, 4, entries[0].Attempts)
	require.False(t, entries[0].FirstFailedAt.IsZero(), "first_failed_at must survive the restart")
	require.True(t, entries[0].FirstFailedAt.Before(entries[0].FailedAt))
}

// failingDLQ fails its first writes, then passes them on.
type failingDLQ struct {
	core.DLQ
	failures atomic.Int32
}

func (d *failingDLQ) Add(ctx context.Context, e core.Entry) (string, error) {
	if d.failures.Add(-1) >= 0 {
		return "", errors.New("redis: connection refused")
	}
	return d.DLQ.Add(ctx, e)
}

func TestFailedDLQWriteLeavesEventPending(t *testing.T) {
	a := newAdapter(t, testredis.Prefix())
	dlq := &failingDLQ{DLQ: a.DLQ()}
	dlq.failures.Store(2)
	var logs bytes.Buffer
	var logsMu sync.Mutex
	bus := newBus(t, a, deadletter.Config{
		DLQ: dlq, DLQRetryPause: 30 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logsMu},
			&slog.HandlerOptions{ReplaceAttr: core.ReplaceLevelName})),
	})
	var calls atomic.Int32
	require.NoError(t, bus.Handle("billing", "invoice.paid", func(ctx context.Context, ev core.Event) error {
		calls.Add(1)
		return core.Permanent(errors.New("invoice total is negative"))
	}))
	runBus(t, bus)

	require.NoError(t, bus.Publish(context.Background(), newEvent(t, "invoice.paid")))
	waitFor(t, "dlq entry after two failed writes", func() bool { return dlqLen(t, a) == 1 })
	require.EqualValues(t, 1, calls.Load(), "a pending dead letter must not run the handler again")

	entries, err := a.DLQ().List(context.Background(), core.ListOptions{})
	require.NoError(t, err)
	require.Equal(t, "invoice total is negative", entries[0].Error)
	require.Equal(t, core.ErrorTypePermanent, entries[0].ErrorType)
	logsMu.Lock()
	defer logsMu.Unlock()
	require.Contains(t, logs.String(), `level=CRITICAL msg="dead letter write failed; event left unacknowledged"`)
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestUndecodableEntryIsDeadLettered(t *testing.T) {
	a := newAdapter(t, testredis.Prefix())
	bus := newBus(t, a, deadletter.Config{})
	var handled atomic.Int32
	require.NoError(t, bus.Handle("index", "patient.registered", func(ctx context.Context, ev core.Event) error {
		handled.Add(1)
		return nil
	}))
	runBus(t, bus)

	client := a.Client()
	stream := a.StreamName("patient.registered")
	ctx := context.Background()
	require.NoError(t, client.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"body", "\xff\xfe binary"}}).Err())
	require.NoError(t, client.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"payload", "not json"}}).Err())
	require.NoError(t, client.XAdd(ctx, &redis.XAddArgs{Stream: stream,
		Values: []any{"payload", "{}", "metadata", "[1,2]"}}).Err())
	require.NoError(t, bus.Publish(ctx, newEvent(t, "patient.registered")))

	waitFor(t, "three decode entries", func() bool { return dlqLen(t, a) == 3 })
	waitFor(t, "the valid event after them", func() bool { return handled.Load() == 1 })

	entries, err := a.DLQ().List(ctx, core.ListOptions{})
	require.NoError(t, err)
	raw := map[string]bool{}
	for _, e := range entries {
		require.Equal(t, core.ErrorTypeDecode, e.ErrorType, "entry %s", e.ID)
		require.NotEmpty(t, e.Error)
		raw[string(e.EventData)] = true
	}
	require.True(t, raw["not json"], "the raw payload must be kept byte for byte")
}

func TestCrashLoopingEventIsDeadLettered(t *testing.T) {
	prefix := testredis.Prefix()
	a := newAdapter(t, prefix)
	ctx := context.Background()
	client := a.Client()
	stream := a.StreamName("patient.registered")

	ev := newEvent(t, "patient.registered")
	require.NoError(t, a.Publisher().Publish("patient.registered", message(t, ev)))
	require.NoError(t, client.XGroupCreateMkStream(ctx, stream, "sync", "0").Err())
	read, err := client.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: "sync", Consumer: "crashed-1", Streams: []string{stream, ">"}, Count: 1,
	}).Result()
	require.NoError(t, err)
	id := read[0].Messages[0].ID
	// Each crash leaves the entry with a dead consumer; another process
	// claims it and dies too, six times in all.
	for i := 2; i <= 6; i++ {
		require.NoError(t, client.XClaim(ctx, &redis.XClaimArgs{
			Stream: stream, Group: "sync", Consumer: fmt.Sprintf("crashed-%d", i), Messages: []string{id},
		}).Err())
	}

	bus := newBus(t, a, deadletter.Config{})
	var calls atomic.Int32
	require.NoError(t, bus.Handle("sync", "patient.registered", func(ctx context.Context, ev core.Event) error {
		calls.Add(1)
		return nil
	}))
	runBus(t, bus)

	waitFor(t, "redelivery limit entry", func() bool { return dlqLen(t, a) == 1 })
	require.Zero(t, calls.Load(), "an event past its attempts must not reach the handler again")
	entries, err := a.DLQ().List(ctx, core.ListOptions{})
	require.NoError(t, err)
	require.Equal(t, core.ErrorTypeRedeliveryLimit, entries[0].ErrorType)
	// Six crashed deliveries and this one: past 4 attempts and the
	// allowance of 2 for crashes.
	require.Equal(t, 7, entries[0].Attempts)
	require.Equal(t, id, entries[0].SourceID)
}

func TestCompetingConsumers(t *testing.T) {
	prefix := testredis.Prefix()
	const events = 300
	var mu sync.Mutex
	seen := map[string]int{}
	handle := func(ctx context.Context, ev core.Event) error {
		mu.Lock()
		seen[ev.EventID]++
		mu.Unlock()
		return nil
	}

	var adapters []*redisstream.Adapter
	for range 2 {
		a := newAdapter(t, prefix)
		adapters = append(adapters, a)
		bus := newBus(t, a, deadletter.Config{})
		require.NoError(t, bus.Handle("index", "patient.registered", handle))
		runBus(t, bus)
	}

	batch := make([]core.Event, 0, events)
	for range events {
		batch = append(batch, newEvent(t, "patient.registered"))
	}
	bus := newBus(t, adapters[0], deadletter.Config{})
	require.NoError(t, bus.Publish(context.Background(), batch...))

	waitFor(t, "every event handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == events
	})
	mu.Lock()
	defer mu.Unlock()
	for id, n := range seen {
		require.Equal(t, 1, n, "event %s handled %d times by the shared handler", id, n)
	}
}

func TestAbandonedEntryIsClaimed(t *testing.T) {
	a := newAdapter(t, testredis.Prefix())
	ctx := context.Background()
	client := a.Client()
	stream := a.StreamName("patient.registered")

	ev := newEvent(t, "patient.registered")
	require.NoError(t, a.Publisher().Publish("patient.registered", message(t, ev)))
	require.NoError(t, client.XGroupCreateMkStream(ctx, stream, "index", "0").Err())
	require.NoError(t, client.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: "index", Consumer: "crashed", Streams: []string{stream, ">"}, Count: 1,
	}).Err())

	bus := newBus(t, a, deadletter.Config{})
	handled := make(chan string, 1)
	require.NoError(t, bus.Handle("index", "patient.registered", func(ctx context.Context, got core.Event) error {
		handled <- got.EventID
		return nil
	}))
	runBus(t, bus)

	select {
	case id := <-handled:
		require.Equal(t, ev.EventID, id)
	case <-time.After(10 * time.Second):
		t.Fatal("an entry left pending by a crashed consumer must be claimed by a live one")
	}
	waitFor(t, "the claimed entry acknowledged", func() bool {
		pending, err := client.XPending(ctx, stream, "index").Result()
		return err == nil && pending.Count == 0
	})
}

func TestRetrySurvivesStreamTrim(t *testing.T) {
	a, err := redisstream.NewAdapter(redisstream.Config{
		URL: testredis.URL(t), Prefix: testredis.Prefix(), StreamMaxLen: 5,
		Block: 20 * time.Millisecond, RetryPollInterval: 5 * time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })

	bus := newBus(t, a, deadletter.Config{Policy: core.Policy{Initial: 300 * time.Millisecond, MaxRetries: 1}})
	failing := newEvent(t, "lab.result")
	failed := make(chan struct{}, 2)
	require.NoError(t, bus.Handle("index", "lab.result", func(ctx context.Context, ev core.Event) error {
		if ev.EventID == failing.EventID {
			failed <- struct{}{}
			return errors.New("index down")
		}
		return nil
	}))
	runBus(t, bus)

	require.NoError(t, bus.Publish(context.Background(), failing))
	<-failed
	for range 200 {
		require.NoError(t, bus.Publish(context.Background(), newEvent(t, "lab.result")))
	}
	length, err := a.Client().XLen(context.Background(), a.StreamName("lab.result")).Result()
	require.NoError(t, err)
	require.Less(t, length, int64(200), "the stream must have been trimmed for this test to mean anything")

	waitFor(t, "the retried event in the DLQ", func() bool { return dlqLen(t, a) == 1 })
	entries, err := a.DLQ().List(context.Background(), core.ListOptions{})
	require.NoError(t, err)
	want, err := failing.Marshal()
	require.NoError(t, err)
	require.Equal(t, string(want), string(entries[0].EventData), "a trimmed entry's retry must keep its event")
	require.Equal(t, 2, entries[0].Attempts)
}

func TestDLQEntryIsFlatInRedis(t *testing.T) {
	a := newAdapter(t, testredis.Prefix())
	bus := newBus(t, a, deadletter.Config{})
	require.NoError(t, bus.Handle("sync", "patient.registered", func(ctx context.Context, ev core.Event) error {
		return core.Permanent(errors.New("record rejected"))
	}))
	runBus(t, bus)

	ev := newEvent(t, "patient.registered")
	require.NoError(t, bus.Publish(context.Background(), ev))
	waitFor(t, "dlq entry", func() bool { return dlqLen(t, a) == 1 })

	raw, err := a.Client().XRange(context.Background(), a.DLQ().(*redisstream.DLQ).Stream(), "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, raw, 1)
	for _, field := range core.RequiredFields {
		value, ok := raw[0].Values[field].(string)
		require.True(t, ok, "field %s must be a flat string in XRANGE output", field)
		if field != core.FieldError {
			require.NotEmpty(t, value, "field %s", field)
		}
	}
	want, err := ev.Marshal()
	require.NoError(t, err)
	require.Equal(t, string(want), raw[0].Values[core.FieldEventData])
	failedAt, err := time.Parse(time.RFC3339Nano, raw[0].Values[core.FieldFailedAt].(string))
	require.NoError(t, err)
	require.Equal(t, time.UTC, failedAt.Location())
}

func TestShutdownLetsRunningHandlersFinish(t *testing.T) {
	a := newAdapter(t, testredis.Prefix())
	bus := newBus(t, a, deadletter.Config{})
	started := make(chan struct{})
	var finished, cancelled atomic.Bool
	require.NoError(t, bus.Handle("billing", "invoice.paid", func(ctx context.Context, ev core.Event) error {
		close(started)
		select {
		case <-time.After(200 * time.Millisecond):
			finished.Store(true)
			return nil
		case <-ctx.Done():
			cancelled.Store(true)
			return ctx.Err()
		}
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.Run(ctx) }()
	<-bus.Running()

	require.NoError(t, bus.Publish(context.Background(), newEvent(t, "invoice.paid")))
	<-started
	cancel()
	require.NoError(t, <-done)

	require.True(t, finished.Load(), "a shutdown must let a running handler finish")
	require.False(t, cancelled.Load(), "a shutdown must not cancel a running handler's context")
	pending, err := a.Client().XPending(context.Background(), a.StreamName("invoice.paid"), "billing").Result()
	require.NoError(t, err)
	require.Zero(t, pending.Count, "the finished handler's event must be acknowledged before the bus stops")
}

func TestTrimmedUnreadEventsAreReported(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu},
		&slog.HandlerOptions{ReplaceAttr: core.ReplaceLevelName}))
	a, err := redisstream.NewAdapter(redisstream.Config{
		URL: testredis.URL(t), Prefix: testredis.Prefix(), StreamMaxLen: 5, Block: 20 * time.Millisecond,
		RetryPollInterval: 5 * time.Millisecond, Logger: logger,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	ctx := context.Background()

	// The handler's group exists and has read one event, then the handler
	// stops while 500 more arrive.
	require.NoError(t, a.Client().XGroupCreateMkStream(ctx, a.StreamName("lab.result"), "index", "$").Err())
	first := newEvent(t, "lab.result")
	require.NoError(t, a.Publisher().Publish("lab.result", message(t, first)))
	require.NoError(t, a.Client().XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: "index", Consumer: "old", Streams: []string{a.StreamName("lab.result"), ">"}, Count: 1,
	}).Err())
	for range 5 {
		batch := make([]*watermillmessage.Message, 0, 100)
		for range 100 {
			batch = append(batch, message(t, newEvent(t, "lab.result")))
		}
		require.NoError(t, a.Publisher().Publish("lab.result", batch...))
	}

	bus := newBus(t, a, deadletter.Config{})
	var handled atomic.Int32
	require.NoError(t, bus.Handle("index", "lab.result", func(ctx context.Context, ev core.Event) error {
		handled.Add(1)
		return nil
	}))
	runBus(t, bus)

	length, err := a.Client().XLen(ctx, a.StreamName("lab.result")).Result()
	require.NoError(t, err)
	require.Less(t, length, int64(500), "the stream must have been trimmed for this test to mean anything")
	waitFor(t, "the events left in the stream", func() bool { return int64(handled.Load()) >= length })

	mu.Lock()
	defer mu.Unlock()
	require.Contains(t, logs.String(), "level=CRITICAL msg=\"events were trimmed from the stream before this handler read them")
	require.Contains(t, logs.String(), fmt.Sprintf("trimmed_unread=%d", 500-length))
}

func TestTrimmedPendingEventsAreReported(t *testing.T) {
	// A consumer reads 10 events and dies without acknowledging them, then
	// the trim removes them. They can no longer be handled, and the loss
	// must be reported once instead of vanishing from the pending list.
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu},
		&slog.HandlerOptions{ReplaceAttr: core.ReplaceLevelName}))
	a, err := redisstream.NewAdapter(redisstream.Config{
		URL: testredis.URL(t), Prefix: testredis.Prefix(), StreamMaxLen: 50, Block: 20 * time.Millisecond,
		RetryPollInterval: 5 * time.Millisecond, ClaimIdle: 50 * time.Millisecond, Logger: logger,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	ctx := context.Background()
	stream := a.StreamName("lab.result")

	require.NoError(t, a.Client().XGroupCreateMkStream(ctx, stream, "index", "$").Err())
	publish := func(n int) {
		batch := make([]*watermillmessage.Message, 0, n)
		for range n {
			batch = append(batch, message(t, newEvent(t, "lab.result")))
		}
		require.NoError(t, a.Publisher().Publish("lab.result", batch...))
	}
	publish(10)
	require.NoError(t, a.Client().XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: "index", Consumer: "stopped", Streams: []string{stream, ">"}, Count: 10,
	}).Err())
	for range 10 {
		publish(100)
	}

	bus := newBus(t, a, deadletter.Config{})
	require.NoError(t, bus.Handle("index", "lab.result", func(ctx context.Context, ev core.Event) error {
		return nil
	}))
	runBus(t, bus)

	const report = "level=CRITICAL msg=\"events read by a stopped consumer were trimmed from the stream before they were handled"
	waitFor(t, "the report of the trimmed pending events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(logs.String(), report)
	})
	waitFor(t, "an empty pending list", func() bool {
		pending, err := a.Client().XPending(ctx, stream, "index").Result()
		return err == nil && pending.Count == 0
	})
	time.Sleep(200 * time.Millisecond) // a few more sweeps

	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 1, strings.Count(logs.String(), report), "the loss must be reported once")
	require.Contains(t, logs.String(), "trimmed_unhandled=10")
	require.Contains(t, logs.String(), "consumers=stopped")
}

func TestReadBatchWaitingForHandlerIsNotClaimed(t *testing.T) {
	// A read returns a batch, and its entries wait to be handed out one by
	// one. Those waiting longer than ClaimIdle must not look abandoned and
	// be delivered a second time.
	const (
		claimIdle = 50 * time.Millisecond
		events    = 5
	)
	a, err := redisstream.NewAdapter(redisstream.Config{
		URL:               testredis.URL(t),
		Prefix:            testredis.Prefix(),
		Block:             20 * time.Millisecond,
		RetryPollInterval: 5 * time.Millisecond,
		ClaimIdle:         claimIdle,
		CloseTimeout:      2 * time.Second,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	for range events {
		require.NoError(t, a.Publisher().Publish("patient.registered", message(t, newEvent(t, "patient.registered"))))
	}

	sub, err := a.Subscriber("index")
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	ch, err := sub.Subscribe(context.Background(), "patient.registered")
	require.NoError(t, err)

	seen := map[string]int{}
	for range events {
		select {
		case msg := <-ch:
			seen[msg.UUID]++
			require.Equal(t, 1, seen[msg.UUID], "entry %s delivered twice", msg.UUID)
			// A slow handler keeps the rest of the batch waiting.
			time.Sleep(3 * claimIdle)
			msg.Ack()
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d entries delivered", len(seen), events)
		}
	}
	select {
	case msg := <-ch:
		t.Fatalf("entry %s delivered again after it was acknowledged", msg.UUID)
	case <-time.After(6 * claimIdle):
	}
}
