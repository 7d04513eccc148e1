//go:build faults

package faults

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/adapters/nats"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/testredis"
)

func TestGoroutines(t *testing.T) {
	t.Run("EndWithBusAndAdapterOnRedis", func(t *testing.T) {
		cfg := ConsumerConfig{Adapter: "redis", BrokerURL: testredis.URL(t), Prefix: testredis.Prefix()}
		before := goleak.IgnoreCurrent()

		runAndClose(t, cfg)

		goleak.VerifyNone(t, before)
	})
	t.Run("EndWithBusAndAdapterOnNATS", func(t *testing.T) {
		// The embedded server, if any, starts before the snapshot: its
		// goroutines run until the test ends.
		url := natsURL(t)
		prefix := "t" + uuid.NewString()[:8]
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = nats.DeleteStreams(ctx, url, prefix)
		})
		cfg := ConsumerConfig{Adapter: "nats", BrokerURL: url, Prefix: prefix}
		before := goleak.IgnoreCurrent()

		runAndClose(t, cfg)
		// The server runs goroutines for each stream and consumer until
		// they are deleted, and one clock goroutine from the first stream
		// on, all of them in this process.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, nats.DeleteStreams(ctx, url, prefix))

		goleak.VerifyNone(t, before, goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server/ats.Register.func1"))
	})
}

// runAndClose runs a bus whose handler fails each event once, so retries
// are scheduled, until every event is handled, then closes bus and adapter.
func runAndClose(t *testing.T, cfg ConsumerConfig) {
	t.Helper()
	const n = 50
	adapter, err := NewAdapter(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	bus, err := deadletter.New(deadletter.Config{
		Adapter:      adapter,
		Policy:       Policy,
		CloseTimeout: 3 * time.Second,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)

	var mu sync.Mutex
	calls := map[string]int{}
	handled := 0
	require.NoError(t, bus.Handle("fault_leak", EventType, func(_ context.Context, ev core.Event) error {
		mu.Lock()
		defer mu.Unlock()
		calls[ev.EventID]++
		if calls[ev.EventID] == 1 {
			return errors.New("first attempt fails")
		}
		if calls[ev.EventID] == 2 {
			handled++
		}
		return nil
	}))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.Run(ctx) }()
	select {
	case <-bus.Running():
	case <-time.After(scenarioTimeout):
		t.Fatalf("bus did not start within %s", scenarioTimeout)
	}
	require.NoError(t, bus.Publish(context.Background(), newEvents(t, n)...))
	waitFor(t, scenarioTimeout, "every event handled after one retry", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return handled == n
	})

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(shutdownBound):
		t.Fatalf("Run did not return within %s", shutdownBound)
	}
	require.NoError(t, bus.Close())
	require.NoError(t, adapter.Close())
}
