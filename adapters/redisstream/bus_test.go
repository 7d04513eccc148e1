package redisstream_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	watermillmessage "github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/adapters/redisstream"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/testredis"
)

// scaled is a policy with the default shape at a hundredth of the pauses.
var scaled = core.Policy{Initial: 20 * time.Millisecond}

func newAdapter(t *testing.T, prefix string) *redisstream.Adapter {
	t.Helper()
	a, err := redisstream.NewAdapter(redisstream.Config{
		URL:               testredis.URL(t),
		Prefix:            prefix,
		Block:             20 * time.Millisecond,
		RetryPollInterval: 5 * time.Millisecond,
		ClaimIdle:         300 * time.Millisecond,
		CloseTimeout:      2 * time.Second,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func newEvent(t *testing.T, eventType string) core.Event {
	t.Helper()
	ev, err := core.NewEvent(eventType, "patient", uuid.NewString(), map[string]string{"name": "Ana"})
	require.NoError(t, err)
	return ev
}

// message returns ev as a Watermill message, as the bus publishes it.
func message(t *testing.T, ev core.Event) *watermillmessage.Message {
	t.Helper()
	payload, err := ev.Marshal()
	require.NoError(t, err)
	return watermillmessage.NewMessage(ev.EventID, payload)
}

func runBus(t *testing.T, bus *deadletter.Bus) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	select {
	case <-bus.Running():
	case <-time.After(10 * time.Second):
		t.Fatal("bus did not start within 10s")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 10s waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBusOnRedis(t *testing.T) {
	t.Run("RetriesThenSucceeds", func(t *testing.T) {
		a := newAdapter(t, testredis.Prefix())
		var logs bytes.Buffer
		bus, err := deadletter.New(deadletter.Config{
			Adapter: a, Policy: scaled,
			Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
		require.NoError(t, err)

		var calls atomic.Int32
		require.NoError(t, bus.Handle("flaky", "patient.registered", func(ctx context.Context, ev core.Event) error {
			if calls.Add(1) <= 2 {
				return errors.New("mail server timed out")
			}
			return nil
		}))
		runBus(t, bus)

		require.NoError(t, bus.Publish(context.Background(), newEvent(t, "patient.registered")))
		waitFor(t, "third attempt", func() bool { return calls.Load() == 3 })
		n, err := a.DLQ().Len(context.Background())
		require.NoError(t, err)
		require.Zero(t, n, "an event that succeeds on its third attempt must not be dead-lettered")
	})

	t.Run("DeadLettersAfterMaxRetries", func(t *testing.T) {
		a := newAdapter(t, testredis.Prefix())
		bus, err := deadletter.New(deadletter.Config{Adapter: a, Policy: scaled})
		require.NoError(t, err)

		var calls atomic.Int32
		require.NoError(t, bus.Handle("broken", "patient.registered", func(ctx context.Context, ev core.Event) error {
			calls.Add(1)
			return errors.New("legacy system refused the connection")
		}))
		runBus(t, bus)

		ev := newEvent(t, "patient.registered")
		require.NoError(t, bus.Publish(context.Background(), ev))
		waitFor(t, "dlq entry", func() bool {
			n, err := a.DLQ().Len(context.Background())
			return err == nil && n == 1
		})
		require.EqualValues(t, 4, calls.Load())

		entries, err := a.DLQ().List(context.Background(), core.ListOptions{})
		require.NoError(t, err)
		require.Len(t, entries, 1)
		require.Equal(t, ev.EventID, entries[0].EventID)
		require.Equal(t, 4, entries[0].Attempts)
		require.Equal(t, "broken", entries[0].Handler)
	})
}
