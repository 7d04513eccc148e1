package deadletter_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/adapters/memory"
	"github.com/deadletter/deadletter/core"
)

func newMemoryBus(t *testing.T) *deadletter.Bus {
	t.Helper()
	adapter, err := memory.New(memory.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = adapter.Close() })
	bus, err := deadletter.New(deadletter.Config{Adapter: adapter})
	require.NoError(t, err)
	return bus
}

func ok(context.Context, core.Event) error { return nil }

func TestBusLifecycle(t *testing.T) {
	t.Run("RunWithoutHandlersFails", func(t *testing.T) {
		bus := newMemoryBus(t)
		err := bus.Run(context.Background())
		require.ErrorIs(t, err, core.ErrInvalidConfig)
		require.Contains(t, err.Error(), "no handlers")
	})

	t.Run("CloseBeforeRunReturnsAtOnce", func(t *testing.T) {
		bus := newMemoryBus(t)
		require.NoError(t, bus.Handle("index", "patient.registered", ok))
		start := time.Now()
		require.NoError(t, bus.Close())
		require.Less(t, time.Since(start), 5*time.Second, "closing a bus that never ran must not wait")
	})

	t.Run("RunEndsWhenContextEnds", func(t *testing.T) {
		bus := newMemoryBus(t)
		require.NoError(t, bus.Handle("index", "patient.registered", ok))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- bus.Run(ctx) }()
		<-bus.Running()
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("Run must return once its context ends")
		}
	})

	t.Run("SecondRunFails", func(t *testing.T) {
		bus := newMemoryBus(t)
		require.NoError(t, bus.Handle("index", "patient.registered", ok))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.NoError(t, bus.Run(ctx))
		err := bus.Run(context.Background())
		require.Error(t, err)
	})

	t.Run("PublishAfterCloseFails", func(t *testing.T) {
		bus := newMemoryBus(t)
		require.NoError(t, bus.Close())
		ev, err := core.NewEvent("patient.registered", "patient", "7f9c2e1a-5b3d-4c8e-9a6f-1d2b3c4d5e6f",
			map[string]string{})
		require.NoError(t, err)
		require.ErrorIs(t, bus.Publish(context.Background(), ev), core.ErrClosed)
	})

	t.Run("NilOptionIsIgnored", func(t *testing.T) {
		bus := newMemoryBus(t)
		require.NoError(t, bus.Handle("index", "patient.registered", ok, nil))
	})
}

func TestPolicyLimits(t *testing.T) {
	for name, p := range map[string]core.Policy{
		"HugeMaxRetries":  {MaxRetries: 1 << 62},
		"NaNMultiplier":   {Multiplier: nan()},
		"InfMultiplier":   {Multiplier: inf()},
		"NaNJitter":       {Jitter: nan()},
		"NegativeInitial": {Initial: -time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			require.ErrorIs(t, p.Validate(), core.ErrInvalidPolicy)
		})
	}
}

func nan() float64 { zero := 0.0; return zero / zero }
func inf() float64 { zero := 0.0; return 1 / zero }
