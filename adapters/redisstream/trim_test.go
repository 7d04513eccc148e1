package redisstream_test

import (
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/adapters/redisstream"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/testredis"
)

// trimmedUnreadPattern matches the count of one trim report.
var trimmedUnreadPattern = regexp.MustCompile(`trimmed_unread=(\d+)`)

// TestLaggingHandlerTrimIsReported runs one handler in two processes that
// keep running but handle events slower than they arrive, so that the trim
// removes events before the group reads them. XREADGROUP then skips the
// gap, and the group never stays behind the stream's first entry for long.
// Every event never handled must be reported once, by one of the processes.
func TestLaggingHandlerTrimIsReported(t *testing.T) {
	const (
		rounds    = 10
		perRound  = 100
		published = rounds * perRound
	)
	prefix := testredis.Prefix()
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{ReplaceAttr: core.ReplaceLevelName}))

	var mu sync.Mutex
	handled := map[string]bool{}
	slowHandler := func(ctx context.Context, ev core.Event) error {
		time.Sleep(2 * time.Millisecond)
		mu.Lock()
		handled[ev.EventID] = true
		mu.Unlock()
		return nil
	}

	var adapters []*redisstream.Adapter
	var stops []func()
	for _, consumer := range []string{"first", "second"} {
		a, err := redisstream.NewAdapter(redisstream.Config{
			URL: testredis.URL(t), Prefix: prefix, Consumer: consumer, Logger: logger,
			StreamMaxLen: 10, MaxInFlight: 1, BatchSize: 1,
			Block: 20 * time.Millisecond, RetryPollInterval: 5 * time.Millisecond,
			ClaimIdle: 100 * time.Millisecond, CloseTimeout: 2 * time.Second,
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = a.Close() })
		adapters = append(adapters, a)

		bus := newBus(t, a, deadletter.Config{Logger: logger})
		require.NoError(t, bus.Handle("index", "lab.result", slowHandler))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- bus.Run(ctx) }()
		<-bus.Running()
		stops = append(stops, func() {
			cancel()
			require.NoError(t, <-done)
		})
	}

	a := adapters[0]
	stream := a.StreamName("lab.result")
	for range rounds {
		for range perRound {
			require.NoError(t, a.Publisher().Publish("lab.result", message(t, newEvent(t, "lab.result"))))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The group has read the last entry and acknowledged all it read, so
	// every event not handled by now was trimmed before any read.
	waitFor(t, "the group to catch up", func() bool {
		last, err := a.Client().XRevRangeN(context.Background(), stream, "+", "-", 1).Result()
		if err != nil || len(last) == 0 {
			return false
		}
		groups, err := a.Client().XInfoGroups(context.Background(), stream).Result()
		return err == nil && len(groups) == 1 &&
			groups[0].LastDeliveredID == last[0].ID && groups[0].Pending == 0
	})
	// Stopping runs each process's last check, so every loss is reported.
	for _, stop := range stops {
		stop()
	}

	mu.Lock()
	neverHandled := published - len(handled)
	mu.Unlock()
	require.Positive(t, neverHandled, "the trim must have removed unread events for this test to mean anything")

	reported := 0
	for _, match := range trimmedUnreadPattern.FindAllStringSubmatch(logs.String(), -1) {
		n, err := strconv.Atoi(match[1])
		require.NoError(t, err)
		reported += n
	}
	require.NotContains(t, logs.String(), "trimmed_unread is a lower bound",
		"an exact count needs a Redis whose read counter adds one per delivered entry, as 7.0 does")
	require.Contains(t, logs.String(),
		"level=CRITICAL msg=\"events were trimmed from the stream before this handler read them")
	require.Equal(t, neverHandled, reported,
		"the reports must count each event trimmed unread once, across both processes")

	count, err := a.Client().HGet(context.Background(), stream+":trimmed-unread:index", "count").Int()
	require.NoError(t, err)
	require.Equal(t, neverHandled, count, "the stored count must match the events never handled")
}

// TestTrimReportWithoutLoss checks that a handler that keeps up while the
// trim removes what it has read gets no report.
func TestTrimReportWithoutLoss(t *testing.T) {
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{ReplaceAttr: core.ReplaceLevelName}))
	a, err := redisstream.NewAdapter(redisstream.Config{
		URL: testredis.URL(t), Prefix: testredis.Prefix(), Logger: logger, StreamMaxLen: 10,
		Block: 20 * time.Millisecond, RetryPollInterval: 5 * time.Millisecond,
		ClaimIdle: 100 * time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })

	bus := newBus(t, a, deadletter.Config{Logger: logger})
	// A set, because an entry claimed again after ClaimIdle runs twice.
	var mu sync.Mutex
	handled := map[string]bool{}
	require.NoError(t, bus.Handle("index", "lab.result", func(ctx context.Context, ev core.Event) error {
		mu.Lock()
		handled[ev.EventID] = true
		mu.Unlock()
		return nil
	}))
	runBus(t, bus)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})

	const published = 300
	for i := range published {
		require.NoError(t, a.Publisher().Publish("lab.result", message(t, newEvent(t, "lab.result"))))
		if i%5 == 4 {
			// The trim keeps at least StreamMaxLen entries, so a handler
			// that never has more than 5 unread loses none.
			waitFor(t, "the handler to keep up", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(handled) == i+1
			})
		}
	}
	waitFor(t, "every event handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == published
	})
	length, err := a.Client().XLen(context.Background(), a.StreamName("lab.result")).Result()
	require.NoError(t, err)
	require.Less(t, length, int64(published), "the stream must have been trimmed for this test to mean anything")

	// The sweeps ran while the trim removed entries the handler had read.
	// Once one has run after the last read, none may have found a loss.
	var state map[string]string
	waitFor(t, "a check after the last read", func() bool {
		ctx := context.Background()
		state, err = a.Client().HGetAll(ctx, a.StreamName("lab.result")+":trimmed-unread:index").Result()
		if err != nil {
			return false
		}
		groups, err := a.Client().XInfoGroups(ctx, a.StreamName("lab.result")).Result()
		return err == nil && len(groups) == 1 && state["last_delivered_id"] == groups[0].LastDeliveredID
	})
	require.Equal(t, "0", state["count"], "a handler that kept up must have no events counted as trimmed unread")
	require.NotContains(t, logs.String(), "trimmed_unread")
}
