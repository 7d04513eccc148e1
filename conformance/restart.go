package conformance

import (
	"context"
	"fmt"
	"testing"
	"time"

	deadletter "github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/core"
)

func restartContracts() []Contract {
	return []Contract{
		{"RetryCountSurvivesRestart", checkRetryCountAfterRestart},
		{"DLQSurvivesRestart", checkDLQAfterRestart},
		{"CloseTwiceIsSafe", checkCloseTwice},
		{"RunningHandlerFinishesOnClose", checkHandlerFinishesOnClose},
	}
}

// requireReopen skips t unless the adapter is durable and cfg can reopen
// it.
func requireReopen(t testing.TB, cfg Config, a core.Adapter) {
	t.Helper()
	requireCapability(t, a, "Durable", a.Capabilities().Durable)
	if cfg.Reopen == nil {
		t.Skipf("adapter %s declares Capabilities.Durable but Config.Reopen is nil", a.Name())
	}
}

// closeAdapter closes a as a stopping process would.
func closeAdapter(t testing.TB, a core.Adapter) {
	t.Helper()
	if err := a.Close(); err != nil {
		t.Fatalf("Adapter.Close must succeed once its subscribers are closed: %v", err)
	}
}

func checkRetryCountAfterRestart(t testing.TB, cfg Config) {
	a := cfg.NewAdapter(t)
	requireReopen(t, cfg, a)
	eventType := newEventType("patient.registered")
	policy := core.Policy{MaxRetries: 3, Initial: cfg.Pause, Multiplier: 1}
	maxAttempts := policy.MaxAttempts()

	var before attempts
	failing := handler{
		name: "send_welcome_email", eventType: eventType, policy: policy,
		fn: func(ctx context.Context, ev core.Event) error {
			before.record(ev)
			return errHandlerFailed
		},
	}
	bus := startBus(t, cfg, deadletter.Config{Adapter: a}, failing)
	bus.publish(t, newEvent(t, eventType, nil))

	waitFor(t, cfg.Timeout, func() bool { return before.count() >= 2 }, func() string {
		return fmt.Sprintf("a failing handler must be retried; it ran %d times", before.count())
	})
	bus.stop(t)
	closeAdapter(t, a)
	ranBefore := before.count()

	var after attempts
	failing.fn = func(ctx context.Context, ev core.Event) error {
		after.record(ev)
		return errHandlerFailed
	}
	reopened := cfg.Reopen(t, a)
	startBus(t, cfg, deadletter.Config{Adapter: reopened}, failing)

	entries := waitEntries(t, cfg, reopened.DLQ(), 1, func() string {
		return fmt.Sprintf("an event failing before a restart must still reach the DLQ after it; the "+
			"handler ran %d times before and %d times after the restart", ranBefore, after.count())
	})
	holds(t, cfg.quietPeriod(), func() bool { return ranBefore+after.count() <= maxAttempts }, func() string {
		return fmt.Sprintf("a restart must not reset the attempt count: a handler allowed %d attempts ran %d "+
			"times before the restart and %d after", maxAttempts, ranBefore, after.count())
	})
	if len(entries) != 1 {
		t.Errorf("the event must be dead-lettered once, but the DLQ holds %d entries", len(entries))
	}
	if entries[0].Attempts < maxAttempts {
		t.Errorf("the entry's attempts must count the attempts before the restart too, at least %d, not %d",
			maxAttempts, entries[0].Attempts)
	}
}

func checkDLQAfterRestart(t testing.TB, cfg Config) {
	a := cfg.NewAdapter(t)
	requireReopen(t, cfg, a)
	added := addEntries(t, a.DLQ(), 3)
	closeAdapter(t, a)

	reopened := cfg.Reopen(t, a)
	if n := dlqLen(t, reopened.DLQ()); n != int64(len(added)) {
		t.Fatalf("a durable DLQ must keep its %d entries across a restart; Len returned %d", len(added), n)
	}
	for _, want := range added {
		got, err := reopened.DLQ().Get(context.Background(), want.ID)
		if err != nil {
			t.Errorf("a durable DLQ must return entry %q after a restart: %v", want.ID, err)
			continue
		}
		sameEntry(t, got, want)
	}
}

func checkCloseTwice(t testing.TB, cfg Config) {
	a := cfg.NewAdapter(t)
	closeAdapter(t, a)
	if err := a.Close(); err != nil {
		t.Errorf("a second Adapter.Close must return nil, as the suite's restarts close adapters before "+
			"their cleanup does: %v", err)
	}
}

// checkHandlerFinishesOnClose closes a bus while a handler runs. The
// handler's context must not end with the shutdown, which would turn a
// stopping service into failed attempts, and its success must be kept: a
// reopened adapter must not deliver the event again.
func checkHandlerFinishesOnClose(t testing.TB, cfg Config) {
	a := cfg.NewAdapter(t)
	eventType := newEventType("patient.registered")
	started, release := make(chan struct{}), make(chan struct{})
	var ctxErr error
	var calls attempts
	slow := handler{
		name: "create_billing_account", eventType: eventType,
		fn: func(ctx context.Context, ev core.Event) error {
			if calls.record(ev) > 1 {
				return nil
			}
			close(started)
			select {
			case <-release:
			case <-time.After(cfg.Timeout):
			}
			ctxErr = ctx.Err()
			return nil
		},
	}
	bus := startBus(t, cfg, deadletter.Config{Adapter: a}, slow)
	bus.publish(t, newEvent(t, eventType, nil))
	select {
	case <-started:
	case <-time.After(cfg.Timeout):
		t.Fatalf("the handler must receive the event within %s", cfg.Timeout)
	}

	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		bus.stop(t)
	}()
	// Give the shutdown time to reach the subscribers before the handler
	// returns.
	time.Sleep(cfg.Pause)
	close(release)
	<-stopped
	if ctxErr != nil {
		t.Errorf("a running handler's context must not end when its bus closes; it ended with %v", ctxErr)
	}
	if n := calls.count(); n != 1 {
		t.Fatalf("the handler must run once before the bus closes, not %d times", n)
	}
	if cfg.Reopen == nil || !a.Capabilities().Durable {
		return
	}
	closeAdapter(t, a)
	reopened := cfg.Reopen(t, a)
	startBus(t, cfg, deadletter.Config{Adapter: reopened}, slow)
	holds(t, cfg.quietPeriod(), func() bool { return calls.count() == 1 }, func() string {
		return fmt.Sprintf("an event handled while its bus closed must not be delivered again; the handler "+
			"ran %d times", calls.count())
	})
}
