package redisstream_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/testredis"
)

func TestReplay(t *testing.T) {
	a := newAdapter(t, testredis.Prefix())
	bus := newBus(t, a, deadletter.Config{Policy: core.Policy{Initial: 10 * time.Millisecond, MaxRetries: 1}})

	var fixed atomic.Bool
	var syncCalls, billingCalls atomic.Int32
	require.NoError(t, bus.Handle("sync", "patient.registered", func(ctx context.Context, ev core.Event) error {
		syncCalls.Add(1)
		if fixed.Load() {
			return nil
		}
		return errors.New("legacy system down")
	}))
	require.NoError(t, bus.Handle("billing", "patient.registered", func(ctx context.Context, ev core.Event) error {
		billingCalls.Add(1)
		return nil
	}))
	runBus(t, bus)

	ctx := context.Background()
	ev := newEvent(t, "patient.registered")
	require.NoError(t, bus.Publish(ctx, ev))
	waitFor(t, "dlq entry", func() bool { return dlqLen(t, a) == 1 })
	entries, err := a.DLQ().List(ctx, core.ListOptions{})
	require.NoError(t, err)
	id := entries[0].ID
	require.EqualValues(t, 2, syncCalls.Load())

	replayer, ok := a.DLQ().(core.Replayer)
	require.True(t, ok, "the Redis DLQ must implement core.Replayer")

	t.Run("DeliversToFailedHandlerOnly", func(t *testing.T) {
		fixed.Store(true)
		require.NoError(t, replayer.Replay(ctx, id, time.Now()))
		waitFor(t, "the replayed attempt", func() bool { return syncCalls.Load() == 3 })
		require.Zero(t, dlqLen(t, a), "a replayed entry must leave the DLQ")

		replayed, err := a.DLQ().List(ctx, core.ListOptions{Replayed: true})
		require.NoError(t, err)
		require.Len(t, replayed, 1)
		require.Equal(t, ev.EventID, replayed[0].EventID)
		require.False(t, replayed[0].ReplayedAt.IsZero())
		require.EqualValues(t, 1, billingCalls.Load(), "other handlers of the event must not see it again")
	})

	t.Run("SecondReplayDeliversNothing", func(t *testing.T) {
		require.NoError(t, replayer.Replay(ctx, id, time.Now()), "replaying a replayed entry must succeed")
		time.Sleep(100 * time.Millisecond) // a second delivery would come within a few poll intervals
		require.EqualValues(t, 3, syncCalls.Load(), "a replay run twice must deliver once")
	})

	t.Run("UnknownIDIsNotFound", func(t *testing.T) {
		require.ErrorIs(t, replayer.Replay(ctx, "1-1", time.Now()), core.ErrEntryNotFound)
		require.ErrorIs(t, replayer.Replay(ctx, "bogus", time.Now()), core.ErrEntryNotFound)
	})
}

func TestReplayThatFailsAgainCountsReplays(t *testing.T) {
	a := newAdapter(t, testredis.Prefix())
	bus := newBus(t, a, deadletter.Config{Policy: core.Policy{MaxRetries: -1}})
	var calls atomic.Int32
	require.NoError(t, bus.Handle("sync", "patient.registered", func(ctx context.Context, ev core.Event) error {
		calls.Add(1)
		return errors.New("legacy system still down")
	}))
	runBus(t, bus)

	ctx := context.Background()
	require.NoError(t, bus.Publish(ctx, newEvent(t, "patient.registered")))
	waitFor(t, "first dlq entry", func() bool { return dlqLen(t, a) == 1 })

	for round := 1; round <= 2; round++ {
		entries, err := a.DLQ().List(ctx, core.ListOptions{})
		require.NoError(t, err)
		require.Len(t, entries, 1)
		require.Equal(t, round-1, entries[0].ReplayCount)
		require.NoError(t, a.DLQ().(core.Replayer).Replay(ctx, entries[0].ID, time.Now()))
		waitFor(t, "the entry back in the DLQ", func() bool {
			entries, err := a.DLQ().List(ctx, core.ListOptions{})
			return err == nil && len(entries) == 1 && entries[0].ReplayCount == round
		})
	}
	require.EqualValues(t, 3, calls.Load())
}
