//go:build faults

package faults

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/adapters/nats"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/testredis"
)

// shutdownBound is how long Run may take to return once its context is
// cancelled while handlers are running.
const shutdownBound = 5 * time.Second

func TestGracefulShutdown(t *testing.T) {
	t.Run("KeepsUnhandledEventsOnRedis", func(t *testing.T) {
		runShutdownScenario(t, ConsumerConfig{
			Adapter:   "redis",
			BrokerURL: testredis.URL(t),
			Prefix:    testredis.Prefix(),
		})
	})
	t.Run("KeepsUnhandledEventsOnNATS", func(t *testing.T) {
		url := natsURL(t)
		prefix := "t" + uuid.NewString()[:8]
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = nats.DeleteStreams(ctx, url, prefix)
		})
		runShutdownScenario(t, ConsumerConfig{Adapter: "nats", BrokerURL: url, Prefix: prefix})
	})
}

// handledSet records which events a handler finished.
type handledSet struct {
	mu      sync.Mutex
	calls   map[string]int
	started atomic.Int64
}

func (s *handledSet) handle(_ context.Context, ev core.Event) error {
	s.started.Add(1)
	time.Sleep(100 * time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[ev.EventID]++
	return nil
}

func (s *handledSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// runShutdownScenario cancels a bus while its handlers sleep, checks that
// Run returns within shutdownBound, then runs a second bus and checks that
// it handles every event the first one left, so none was acknowledged
// without being handled.
func runShutdownScenario(t *testing.T, cfg ConsumerConfig) {
	const n = 200
	cfg.MaxInFlight = 20 // so that the first bus stops with events left
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	events := newEvents(t, n)

	first := &handledSet{calls: map[string]int{}}
	adapter, err := NewAdapter(cfg, logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = adapter.Close() })
	bus := newShutdownBus(t, adapter, logger, first)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- bus.Run(ctx) }()
	select {
	case <-bus.Running():
	case <-time.After(scenarioTimeout):
		t.Fatalf("bus did not start within %s", scenarioTimeout)
	}
	require.NoError(t, bus.Publish(context.Background(), events...))
	waitFor(t, scenarioTimeout, "handlers to start", func() bool { return first.started.Load() >= 10 })

	cancel()
	cancelled := time.Now()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(shutdownBound):
		t.Fatalf("Run did not return within %s of its context ending", shutdownBound)
	}
	stopTime := time.Since(cancelled)
	require.NoError(t, adapter.Close())
	handledFirst := first.len()
	require.Less(t, handledFirst, n, "the first bus must stop before it handles every event")

	second := &handledSet{calls: map[string]int{}}
	adapter2, err := NewAdapter(cfg, logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = adapter2.Close() })
	bus2 := newShutdownBus(t, adapter2, logger, second)
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan error, 1)
	go func() { done2 <- bus2.Run(ctx2) }()
	t.Cleanup(func() {
		cancel2()
		select {
		case <-done2:
		case <-time.After(shutdownBound):
			t.Errorf("second bus did not stop within %s", shutdownBound)
		}
	})

	missing := func() []string {
		first.mu.Lock()
		defer first.mu.Unlock()
		second.mu.Lock()
		defer second.mu.Unlock()
		var ids []string
		for _, ev := range events {
			if first.calls[ev.EventID] == 0 && second.calls[ev.EventID] == 0 {
				ids = append(ids, ev.EventID)
			}
		}
		return ids
	}
	waitFor(t, scenarioTimeout, "the second bus to handle what the first left", func() bool {
		return len(missing()) == 0
	})
	var result tally
	first.mu.Lock()
	second.mu.Lock()
	for _, ev := range events {
		calls := first.calls[ev.EventID] + second.calls[ev.EventID]
		if calls > 0 {
			result.handled++
		}
		if calls > 1 {
			result.duplicates++
		}
	}
	second.mu.Unlock()
	first.mu.Unlock()
	result.lost = n - result.handled
	report(t, "shutdown", cfg.Adapter, n, 1, result, fmt.Sprintf("Run returned %s after cancel",
		stopTime.Round(time.Millisecond)))
	t.Logf("%s: Run returned %s after cancel with %d handlers started; first bus handled %d of %d, "+
		"second bus handled %d", cfg.Adapter, stopTime.Round(time.Millisecond), first.started.Load(),
		handledFirst, n, second.len())
}

func newShutdownBus(t *testing.T, adapter core.Adapter, logger *slog.Logger, set *handledSet) *deadletter.Bus {
	t.Helper()
	bus, err := deadletter.New(deadletter.Config{
		Adapter:      adapter,
		Policy:       Policy,
		CloseTimeout: 3 * time.Second,
		Logger:       logger,
	})
	require.NoError(t, err)
	require.NoError(t, bus.Handle("fault_slow", EventType, set.handle))
	return bus
}
