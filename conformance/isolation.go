package conformance

import (
	"context"
	"fmt"
	"testing"
	"time"

	deadletter "github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/core"
)

func isolationContracts() []Contract {
	return []Contract{
		{"HandlersOfOneEventRunIndependently", checkHandlerIsolation},
		{"PendingRetryDoesNotBlockLaterEvents", checkNoHeadOfLineBlocking},
	}
}

func checkHandlerIsolation(t testing.TB, cfg Config) {
	a := cfg.NewAdapter(t)
	eventType := newEventType("patient.registered")
	policy := core.Policy{MaxRetries: 2, Initial: cfg.Pause}

	var email, billing, search attempts
	record := func(calls *attempts, err error) deadletter.HandlerFunc {
		return func(ctx context.Context, ev core.Event) error {
			calls.record(ev)
			return err
		}
	}
	bus := startBus(t, cfg, deadletter.Config{Adapter: a, Policy: policy},
		handler{name: "send_welcome_email", eventType: eventType, fn: record(&email, errHandlerFailed)},
		handler{name: "create_billing_account", eventType: eventType, fn: record(&billing, nil)},
		handler{name: "index_patient", eventType: eventType, fn: record(&search, nil)},
	)
	ev := newEvent(t, eventType, nil)
	bus.publish(t, ev)

	entries := waitEntries(t, cfg, a.DLQ(), 1, func() string {
		return fmt.Sprintf("the failing handler of three must dead-letter the event; it ran %d times and "+
			"the DLQ is still empty", email.count())
	})
	holds(t, cfg.quietPeriod(), func() bool {
		return billing.count() == 1 && search.count() == 1 && dlqLen(t, a.DLQ()) == 1
	}, func() string {
		return fmt.Sprintf("a failure in one handler must not re-run the others of the event: each healthy "+
			"handler must run once; create_billing_account ran %d times, index_patient %d times, and the DLQ "+
			"holds %d entries", billing.count(), search.count(), dlqLen(t, a.DLQ()))
	})

	if entries[0].Handler != "send_welcome_email" {
		t.Errorf("the entry must name the handler that failed, %q, not %q", "send_welcome_email",
			entries[0].Handler)
	}
	if got := email.count(); got != policy.MaxAttempts() {
		t.Errorf("the failing handler must run 1+MaxRetries = %d times, not %d", policy.MaxAttempts(), got)
	}
}

func checkNoHeadOfLineBlocking(t testing.TB, cfg Config) {
	a := cfg.NewAdapter(t)
	requireCapability(t, a, "Redelivery", a.Capabilities().Redelivery)
	eventType := newEventType("lab.result_received")

	// The first event fails once and then waits out a long pause. The test
	// ends well before the pause does, closing the bus with the retry still
	// pending.
	longPause := max(2*time.Second, 40*cfg.Pause)
	failed := make(chan time.Time, 1)
	var calls attempts
	first := newEvent(t, eventType, nil)
	bus := startBus(t, cfg, deadletter.Config{Adapter: a}, handler{
		name: "notify_doctor", eventType: eventType,
		policy: core.Policy{MaxRetries: 1, Initial: longPause},
		fn: func(ctx context.Context, ev core.Event) error {
			if calls.record(ev) == 1 && ev.EventID == first.EventID {
				failed <- time.Now()
				return errHandlerFailed
			}
			return nil
		},
	})

	bus.publish(t, first)
	var failedAt time.Time
	select {
	case failedAt = <-failed:
	case <-time.After(cfg.Timeout):
		t.Fatalf("a published event must reach its handler within %s", cfg.Timeout)
	}

	const later = 5
	for range later {
		bus.publish(t, newEvent(t, eventType, nil))
	}
	waitFor(t, longPause/2, func() bool { return calls.events() == 1+later }, func() string {
		return fmt.Sprintf("events published after one that waits %s for its retry must be handled well "+
			"before that pause ends; %d of %d were handled", longPause, calls.events()-1, later)
	})
	if waited := time.Since(failedAt); waited >= longPause {
		t.Errorf("later events must be handled while the first waits for its retry; they took %s, "+
			"the whole pause of %s", waited, longPause)
	}
}
