package nats

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	deadletter "github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/core"
)

func TestBus(t *testing.T) {
	a := newTestAdapter(t)
	policy := core.Policy{MaxRetries: 2, Initial: 20 * time.Millisecond, Multiplier: 2}
	bus, err := deadletter.New(deadletter.Config{
		Adapter:      a,
		Policy:       policy,
		CloseTimeout: 5 * time.Second,
		Logger:       slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)

	var (
		mu       sync.Mutex
		calls    = map[string][]time.Time{}
		recorded = func(handler string) []time.Time {
			mu.Lock()
			defer mu.Unlock()
			return append([]time.Time(nil), calls[handler]...)
		}
		record = func(handler string) int {
			mu.Lock()
			defer mu.Unlock()
			calls[handler] = append(calls[handler], time.Now())
			return len(calls[handler])
		}
	)
	require.NoError(t, bus.Handle("flaky_mail", "patient.registered", func(ctx context.Context, ev core.Event) error {
		if record("flaky_mail") <= 2 {
			return errors.New("mail server timed out")
		}
		return nil
	}))
	require.NoError(t, bus.Handle("broken_billing", "patient.registered", func(ctx context.Context, ev core.Event) error {
		record("broken_billing")
		return errors.New("billing account rejected")
	}))

	done := make(chan error, 1)
	go func() { done <- bus.Run(context.Background()) }()
	t.Cleanup(func() {
		require.NoError(t, bus.Close())
		require.NoError(t, <-done)
	})
	select {
	case <-bus.Running():
	case <-time.After(waitTimeout):
		t.Fatal("bus handlers did not subscribe")
	}

	ev := newTestEvent(t, "patient.registered")
	require.NoError(t, bus.Publish(context.Background(), ev))

	t.Run("RetriesUntilSuccess", func(t *testing.T) {
		require.Eventually(t, func() bool { return len(recorded("flaky_mail")) == 3 }, waitTimeout, 5*time.Millisecond)
		attempts := recorded("flaky_mail")
		require.GreaterOrEqual(t, attempts[1].Sub(attempts[0]), 20*time.Millisecond)
		require.GreaterOrEqual(t, attempts[2].Sub(attempts[1]), 40*time.Millisecond)
	})

	t.Run("DeadLettersAfterLastRetry", func(t *testing.T) {
		var entries []core.Entry
		require.Eventually(t, func() bool {
			entries, err = a.DLQ().List(context.Background(), core.ListOptions{})
			return err == nil && len(entries) == 1
		}, waitTimeout, 5*time.Millisecond)

		entry := entries[0]
		raw, err := ev.Marshal()
		require.NoError(t, err)
		require.JSONEq(t, string(raw), string(entry.EventData))
		require.Equal(t, "broken_billing", entry.Handler)
		require.Equal(t, "billing account rejected", entry.Error)
		require.Equal(t, ev.EventID, entry.EventID)
		require.Equal(t, 3, entry.Attempts)
		require.Equal(t, core.ErrorTypeFailure, entry.ErrorType)
		require.Equal(t, a.names.eventsStream, entry.SourceStream)
		require.Equal(t, "1", entry.SourceID)
		require.True(t, entry.FirstFailedAt.Before(entry.FailedAt.Add(-40*time.Millisecond)),
			"first_failed_at must come from the first attempt, carried in the retry state")
		require.Len(t, recorded("broken_billing"), 3)
	})
}
