package replay_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/adapters/memory"
	"github.com/deadletter/deadletter/adapters/redisstream"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/inspect"
	"github.com/deadletter/deadletter/internal/testredis"
	"github.com/deadletter/deadletter/replay"
)

// quick is a policy of one retry after 5 ms, so events reach the DLQ fast.
var quick = core.Policy{MaxRetries: 1, Initial: 5 * time.Millisecond}

func newMemory(t *testing.T) core.Adapter {
	t.Helper()
	a, err := memory.New(memory.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func newRedis(t *testing.T) core.Adapter {
	t.Helper()
	a, err := redisstream.NewAdapter(redisstream.Config{
		URL:               testredis.URL(t),
		Prefix:            testredis.Prefix(),
		Block:             20 * time.Millisecond,
		RetryPollInterval: 5 * time.Millisecond,
		CloseTimeout:      2 * time.Second,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	return a
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

// outage runs a bus with two handlers of patient.registered: index_patient
// always succeeds and sync_to_legacy fails while broken is set. It publishes
// n events and returns once all of sync_to_legacy's are dead-lettered.
type outage struct {
	bus         *deadletter.Bus
	broken      atomic.Bool
	indexCalls  atomic.Int64
	syncCalls   atomic.Int64
	syncHandled atomic.Int64
}

func startOutage(t *testing.T, adapter core.Adapter, n int) *outage {
	t.Helper()
	o := &outage{}
	o.broken.Store(true)
	bus, err := deadletter.New(deadletter.Config{Adapter: adapter, Policy: quick, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	o.bus = bus

	require.NoError(t, bus.Handle("index_patient", "patient.registered", func(context.Context, core.Event) error {
		o.indexCalls.Add(1)
		return nil
	}))
	require.NoError(t, bus.Handle("sync_to_legacy", "patient.registered", func(context.Context, core.Event) error {
		o.syncCalls.Add(1)
		if o.broken.Load() {
			return core.Permanent(errLegacyDown)
		}
		o.syncHandled.Add(1)
		return nil
	}))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	<-bus.Running()

	for range n {
		ev, err := core.NewEvent("patient.registered", "patient", uuid.NewString(), map[string]string{"name": "Ana"})
		require.NoError(t, err)
		require.NoError(t, bus.Publish(context.Background(), ev))
	}
	waitFor(t, "every event dead-lettered", func() bool {
		count, err := adapter.DLQ().Len(context.Background())
		return err == nil && count == int64(n) && o.indexCalls.Load() == int64(n)
	})
	return o
}

type legacyError struct{}

func (legacyError) Error() string { return "legacy HIS refused the connection" }

var errLegacyDown = legacyError{}

func TestReplay(t *testing.T) {
	adapters := map[string]func(*testing.T) core.Adapter{"Memory": newMemory, "Redis": newRedis}
	for name, newAdapter := range adapters {
		t.Run(name, func(t *testing.T) {
			t.Run("DeliversToFailedHandlerOnly", func(t *testing.T) { testReplayHandlerOnly(t, newAdapter(t)) })
			t.Run("DryRunChangesNothing", func(t *testing.T) { testDryRun(t, newAdapter(t)) })
			t.Run("RunTwiceDeliversOnce", func(t *testing.T) { testReplayTwice(t, newAdapter(t)) })
		})
	}
}

func testReplayHandlerOnly(t *testing.T, adapter core.Adapter) {
	ctx := context.Background()
	o := startOutage(t, adapter, 20)
	o.broken.Store(false)

	var progress []int
	res, err := replay.Run(ctx, replay.Config{
		DLQ:      adapter.DLQ(),
		Filter:   inspect.Filter{Handler: "sync_to_legacy"},
		Rate:     -1,
		Progress: func(done, total int) { progress = append(progress, done) },
	})
	require.NoError(t, err)
	require.Equal(t, 20, res.Replayed)
	require.Len(t, progress, 20)
	require.Equal(t, 20, progress[19])

	waitFor(t, "20 replayed events handled", func() bool { return o.syncHandled.Load() == 20 })
	count, err := adapter.DLQ().Len(ctx)
	require.NoError(t, err)
	require.Zero(t, count)
	replayed, err := adapter.DLQ().List(ctx, core.ListOptions{Replayed: true, Limit: 100})
	require.NoError(t, err)
	require.Len(t, replayed, 20)
	require.EqualValues(t, 20, o.indexCalls.Load(), "the other handler of the event is not called again")
}

func testDryRun(t *testing.T, adapter core.Adapter) {
	ctx := context.Background()
	o := startOutage(t, adapter, 5)
	o.broken.Store(false)

	res, err := replay.Run(ctx, replay.Config{DLQ: adapter.DLQ(), DryRun: true, Limit: 3})
	require.NoError(t, err)
	require.True(t, res.DryRun)
	require.Len(t, res.Selected, 3)
	require.Zero(t, res.Replayed)
	newestFirst, err := adapter.DLQ().List(ctx, core.ListOptions{})
	require.NoError(t, err)
	require.Equal(t, newestFirst[4].ID, res.Selected[0].ID, "oldest first")
	require.Equal(t, newestFirst[2].ID, res.Selected[2].ID)
	count, err := adapter.DLQ().Len(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 5, count)
	require.Zero(t, o.syncHandled.Load())
}

func testReplayTwice(t *testing.T, adapter core.Adapter) {
	ctx := context.Background()
	o := startOutage(t, adapter, 4)
	o.broken.Store(false)

	sel, err := inspect.Select(ctx, adapter.DLQ(), inspect.Filter{}, 0, 0)
	require.NoError(t, err)
	ids := []string{sel.Entries[0].ID, sel.Entries[1].ID}

	res, err := replay.Run(ctx, replay.Config{DLQ: adapter.DLQ(), Filter: inspect.Filter{IDs: ids}, Rate: -1})
	require.NoError(t, err)
	require.Equal(t, 2, res.Replayed)

	res, err = replay.Run(ctx, replay.Config{DLQ: adapter.DLQ(), Filter: inspect.Filter{IDs: ids}, Rate: -1})
	require.NoError(t, err)
	require.Zero(t, res.Replayed)
	require.ElementsMatch(t, ids, res.Missing, "replayed entries are reported missing, not replayed again")

	waitFor(t, "2 replayed events handled", func() bool { return o.syncHandled.Load() == 2 })
	count, err := adapter.DLQ().Len(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, count)
}

func TestReplayLoopGuard(t *testing.T) {
	ctx := context.Background()
	dlq := newMemory(t).DLQ()
	for count := range 5 {
		_, err := dlq.Add(ctx, core.Entry{
			EventData: []byte(`{}`), Handler: "h", Error: "boom", FailedAt: time.Now().UTC(),
			EventType: "a.b", EventID: uuid.NewString(), ReplayCount: count,
		})
		require.NoError(t, err)
	}

	res, err := replay.Run(ctx, replay.Config{DLQ: dlq, DryRun: true})
	require.NoError(t, err)
	require.Len(t, res.Selected, 3, "replay counts 0, 1 and 2 are under the default of 3")
	require.Len(t, res.Refused, 2)
	require.Equal(t, 3, res.Refused[0].ReplayCount)

	res, err = replay.Run(ctx, replay.Config{DLQ: dlq, DryRun: true, MaxReplayCount: -1})
	require.NoError(t, err)
	require.Len(t, res.Selected, 5, "-1 turns the guard off")
}

// subscribeOnce makes the handler known on the adapter, so that replays to
// it are accepted, and stops its subscription again.
func subscribeOnce(t *testing.T, adapter core.Adapter, handler, eventType string) {
	t.Helper()
	sub, err := adapter.Subscriber(handler)
	require.NoError(t, err)
	_, err = sub.Subscribe(context.Background(), eventType)
	require.NoError(t, err)
	require.NoError(t, sub.Close())
}

func TestReplayRate(t *testing.T) {
	ctx := context.Background()
	adapter := newMemory(t)
	subscribeOnce(t, adapter, "h", "a.b")
	for range 6 {
		_, err := adapter.DLQ().Add(ctx, core.Entry{
			EventData: []byte(`{}`), Handler: "h", Error: "boom", FailedAt: time.Now().UTC(),
			EventType: "a.b", EventID: uuid.NewString(),
		})
		require.NoError(t, err)
	}

	start := time.Now()
	res, err := replay.Run(ctx, replay.Config{DLQ: adapter.DLQ(), Rate: 100})
	require.NoError(t, err)
	require.Equal(t, 6, res.Replayed)
	require.GreaterOrEqual(t, time.Since(start), 45*time.Millisecond, "6 entries at 100/s take at least 50ms")
}

// plainDLQ hides every method but those of core.DLQ.
type plainDLQ struct{ core.DLQ }

func TestReplayNotSupported(t *testing.T) {
	dlq := plainDLQ{newMemory(t).DLQ()}
	_, err := replay.Run(context.Background(), replay.Config{DLQ: dlq})
	require.ErrorIs(t, err, core.ErrNotSupported)

	_, err = replay.Run(context.Background(), replay.Config{DLQ: dlq, DryRun: true})
	require.NoError(t, err, "a dry run needs no Replayer")
}

func TestReplayConfig(t *testing.T) {
	dlq := newMemory(t).DLQ()
	cases := map[string]replay.Config{
		"MissingDLQ":       {},
		"NegativeLimit":    {DLQ: dlq, Limit: -1},
		"NegativeRate":     {DLQ: dlq, Rate: -2},
		"NegativeMaxCount": {DLQ: dlq, MaxReplayCount: -3},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := replay.Run(context.Background(), cfg)
			require.ErrorIs(t, err, core.ErrInvalidConfig)
		})
	}
}

func TestReplaySkipsUndecodable(t *testing.T) {
	ctx := context.Background()
	dlq := newMemory(t).DLQ()
	for _, errorType := range []core.ErrorType{core.ErrorTypeFailure, core.ErrorTypeDecode, core.ErrorTypeDecode} {
		_, err := dlq.Add(ctx, core.Entry{
			EventData: []byte(`not an event`), Handler: "h", Error: "boom", FailedAt: time.Now().UTC(),
			EventType: "a.b", EventID: uuid.NewString(), ErrorType: errorType,
		})
		require.NoError(t, err)
	}

	res, err := replay.Run(ctx, replay.Config{DLQ: dlq, DryRun: true})
	require.NoError(t, err)
	require.Len(t, res.Selected, 1, "undecodable entries would fail straight back")
	require.Len(t, res.Undecodable, 2)

	res, err = replay.Run(ctx, replay.Config{DLQ: dlq, DryRun: true, IncludeUndecodable: true})
	require.NoError(t, err)
	require.Len(t, res.Selected, 3)
	require.Empty(t, res.Undecodable)
}

func TestReplayWorkers(t *testing.T) {
	ctx := context.Background()
	adapter := newMemory(t)
	subscribeOnce(t, adapter, "h", "a.b")
	for range 50 {
		_, err := adapter.DLQ().Add(ctx, core.Entry{
			EventData: []byte(`{}`), Handler: "h", Error: "boom", FailedAt: time.Now().UTC(),
			EventType: "a.b", EventID: uuid.NewString(),
		})
		require.NoError(t, err)
	}

	var progress []int
	res, err := replay.Run(ctx, replay.Config{DLQ: adapter.DLQ(), Rate: -1, Workers: 8,
		Progress: func(done, total int) { progress = append(progress, done) }})
	require.NoError(t, err)
	require.Equal(t, 50, res.Replayed, "every entry is replayed once across the workers")
	require.Len(t, progress, 50)
	require.Equal(t, 50, progress[len(progress)-1])
	n, err := adapter.DLQ().Len(ctx)
	require.NoError(t, err)
	require.Zero(t, n)

	_, err = replay.Run(ctx, replay.Config{DLQ: adapter.DLQ(), Workers: -1})
	require.ErrorIs(t, err, core.ErrInvalidConfig)
}
