package conformance

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	deadletter "github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/core"
)

func replayContracts() []Contract {
	return []Contract{
		{"ReplayDeliversToFailedHandlerOnly", checkReplay},
		{"ReplayedEventThatFailsCountsReplays", checkReplayCount},
		{"ReplayToUnknownHandlerFails", checkReplayToUnknownHandler},
	}
}

// replayer returns the adapter's DLQ as a core.Replayer, or skips t.
func replayer(t testing.TB, a core.Adapter) core.Replayer {
	t.Helper()
	r, ok := a.DLQ().(core.Replayer)
	if !ok {
		t.Skipf("the DLQ of adapter %s does not implement core.Replayer", a.Name())
	}
	return r
}

func checkReplay(t testing.TB, cfg Config) {
	a := cfg.NewAdapter(t)
	replay := replayer(t, a)
	eventType := newEventType("patient.registered")

	var fixed atomic.Bool
	var syncCalls, billingCalls attempts
	startBus(t, cfg, deadletter.Config{Adapter: a, Policy: core.Policy{MaxRetries: -1}},
		handler{name: "sync_to_legacy", eventType: eventType, fn: func(ctx context.Context, ev core.Event) error {
			syncCalls.record(ev)
			if fixed.Load() {
				return nil
			}
			return errHandlerFailed
		}},
		handler{name: "create_billing_account", eventType: eventType, fn: func(ctx context.Context, ev core.Event) error {
			billingCalls.record(ev)
			return nil
		}},
	).publish(t, newEvent(t, eventType, nil))

	entries := waitEntries(t, cfg, a.DLQ(), 1, func() string {
		return "a handler failing with no retries must leave one DLQ entry before it is replayed"
	})
	id := entries[0].ID
	fixed.Store(true)
	ctx := context.Background()
	if err := replay.Replay(ctx, id, time.Now()); err != nil {
		t.Fatalf("Replay of entry %s must succeed: %v", id, err)
	}

	waitFor(t, cfg.Timeout, func() bool { return syncCalls.count() == 2 }, func() string {
		return fmt.Sprintf("a replayed event must reach the handler that failed again; it ran %d times",
			syncCalls.count())
	})
	if n := dlqLen(t, a.DLQ()); n != 0 {
		t.Errorf("a replayed entry must leave the DLQ; it holds %d entries", n)
	}
	replayed := listAll(t, a.DLQ(), true)
	if len(replayed) != 1 || replayed[0].EventID != entries[0].EventID || replayed[0].ReplayedAt.IsZero() {
		t.Fatalf("a replayed entry must be in the replayed store once, with replayed_at; got %d entries", len(replayed))
	}
	if replayed[0].ReplayCount != entries[0].ReplayCount+1 {
		t.Errorf("the replayed store must say how often the entry was replayed: replay_count %d, want %d",
			replayed[0].ReplayCount, entries[0].ReplayCount+1)
	}

	if err := replay.Replay(ctx, id, time.Now()); err != nil {
		t.Errorf("replaying an entry that was replayed before must succeed, so that an interrupted "+
			"replay can run again: %v", err)
	}
	holds(t, cfg.quietPeriod(), func() bool { return syncCalls.count() == 2 && billingCalls.count() == 1 }, func() string {
		return fmt.Sprintf("a replay must deliver the event once and only to the handler that failed; "+
			"that handler ran %d times in all and the other %d times", syncCalls.count(), billingCalls.count())
	})

	if err := replay.Replay(ctx, "no-such-entry", time.Now()); !errors.Is(err, core.ErrEntryNotFound) {
		t.Errorf("Replay of an unknown id must return an error wrapping core.ErrEntryNotFound, not %v", err)
	}
}

func checkReplayCount(t testing.TB, cfg Config) {
	a := cfg.NewAdapter(t)
	replay := replayer(t, a)
	eventType := newEventType("patient.registered")

	var calls attempts
	startBus(t, cfg, deadletter.Config{Adapter: a, Policy: core.Policy{MaxRetries: -1}},
		handler{name: "sync_to_legacy", eventType: eventType, fn: func(ctx context.Context, ev core.Event) error {
			calls.record(ev)
			return errHandlerFailed
		}},
	).publish(t, newEvent(t, eventType, nil))

	for round := 1; round <= 2; round++ {
		entries := waitEntries(t, cfg, a.DLQ(), 1, func() string {
			return fmt.Sprintf("a replayed event that fails again must return to the DLQ (round %d)", round)
		})
		if got := entries[0].ReplayCount; got != round-1 {
			t.Fatalf("an entry of an event replayed %d times must have replay_count %d, not %d", round-1, round-1, got)
		}
		if err := replay.Replay(context.Background(), entries[0].ID, time.Now()); err != nil {
			t.Fatalf("Replay must succeed: %v", err)
		}
		waitFor(t, cfg.Timeout, func() bool { return calls.count() == round+1 }, func() string {
			return fmt.Sprintf("replay round %d must run the handler again; it ran %d times", round, calls.count())
		})
	}
	entries := waitEntries(t, cfg, a.DLQ(), 1, func() string {
		return "the event replayed twice must return to the DLQ a third time"
	})
	if entries[0].ReplayCount != 2 || entries[0].Attempts != 1 {
		t.Errorf("a replay must count in replay_count and start a fresh attempt count: "+
			"got replay_count %d, attempts %d", entries[0].ReplayCount, entries[0].Attempts)
	}
}

func checkReplayToUnknownHandler(t testing.TB, cfg Config) {
	a := cfg.NewAdapter(t)
	replay := replayer(t, a)
	eventType := newEventType("patient.registered")

	startBus(t, cfg, deadletter.Config{Adapter: a, Policy: core.Policy{MaxRetries: -1}},
		handler{name: "sync_to_legacy", eventType: eventType, fn: func(ctx context.Context, ev core.Event) error {
			return errHandlerFailed
		}},
	).publish(t, newEvent(t, eventType, nil))
	entries := waitEntries(t, cfg, a.DLQ(), 1, func() string {
		return "a handler failing with no retries must leave one DLQ entry"
	})

	// An entry naming a handler that never subscribed, as after a rename.
	ghost := entries[0]
	ghost.Handler = "renamed_handler"
	id, err := a.DLQ().Add(context.Background(), ghost)
	if err != nil {
		t.Fatalf("DLQ.Add must succeed: %v", err)
	}
	err = replay.Replay(context.Background(), id, time.Now())
	if !errors.Is(err, core.ErrUnknownHandler) {
		t.Fatalf("Replay to a handler that never subscribed must fail with core.ErrUnknownHandler, "+
			"since nothing would receive the event; got %v", err)
	}
	if _, err := a.DLQ().Get(context.Background(), id); err != nil {
		t.Errorf("a replay that fails must leave the entry in the DLQ: %v", err)
	}
}
