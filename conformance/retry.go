package conformance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	deadletter "github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/core"
)

func retryContracts() []Contract {
	return []Contract{
		{"RetriesFollowPolicyThenDeadLetter", checkRetryTimeline},
		{"SuccessfulRetryLeavesNoEntry", checkSuccessfulRetry},
		{"RetryAfterOverridesPolicyPause", checkRetryAfter},
		{"SkippedEventIsNotRetried", checkSkip},
		{"PermanentErrorDeadLettersAtOnce", checkPermanentError},
		{"PanicIsDeadLetteredAtOnce", checkPanic},
	}
}

// pauseBounds returns the range a retry that should wait pause may arrive
// in. The lower bound allows for clock and timer granularity. The upper
// bound only catches a pause far off the policy, such as the 2 s default
// in place of a scaled one, because loaded test machines are slow.
func pauseBounds(pause time.Duration) (low, high time.Duration) {
	return pause - pause/10, 3*pause + 500*time.Millisecond
}

func checkRetryTimeline(t testing.TB, cfg Config) {
	a := cfg.NewAdapter(t)
	eventType := newEventType("patient.registered")
	policy := core.Policy{MaxRetries: 3, Initial: cfg.Pause, Multiplier: 2}
	maxAttempts := policy.MaxAttempts()

	var calls attempts
	bus := startBus(t, cfg, deadletter.Config{Adapter: a}, handler{
		name: "send_welcome_email", eventType: eventType, policy: policy,
		fn: func(ctx context.Context, ev core.Event) error {
			calls.record(ev)
			return errHandlerFailed
		},
	})
	bus.publish(t, newEvent(t, eventType, nil))

	entries := waitEntries(t, cfg, a.DLQ(), 1, func() string {
		return fmt.Sprintf("an event whose handler always fails must reach the DLQ after %d attempts; "+
			"the handler ran %d times and the DLQ is still empty", maxAttempts, calls.count())
	})
	if got := calls.count(); got != maxAttempts {
		t.Fatalf("an always failing handler must run 1+MaxRetries = %d times before its event is "+
			"dead-lettered; it ran %d times", maxAttempts, got)
	}
	holds(t, cfg.quietPeriod(), func() bool { return calls.count() == maxAttempts }, func() string {
		return fmt.Sprintf("a dead-lettered event must not reach its handler again; the handler ran %d "+
			"times, %d expected", calls.count(), maxAttempts)
	})

	if len(entries) != 1 {
		t.Errorf("an event that fails must be dead-lettered once, but the DLQ holds %d entries", len(entries))
	}
	if got := entries[0].Attempts; got != maxAttempts {
		t.Errorf("the entry's attempts must count every attempt, %d, not %d", maxAttempts, got)
	}
	if got := entries[0].ErrorType; got != core.ErrorTypeFailure {
		t.Errorf("a plain handler error must be dead-lettered with error_type %q, not %q",
			core.ErrorTypeFailure, got)
	}

	times := calls.calls()
	for retry := 1; retry < len(times); retry++ {
		gap := times[retry].Sub(times[retry-1])
		want := policy.Pause(retry)
		low, high := pauseBounds(want)
		if gap < low {
			t.Errorf("retry %d must wait the policy's pause of %s; it came after %s", retry, want, gap)
		}
		if gap > high {
			t.Errorf("retry %d must come close to the policy's pause of %s; it came after %s, above %s",
				retry, want, gap, high)
		}
	}
}

func checkSuccessfulRetry(t testing.TB, cfg Config) {
	a := cfg.NewAdapter(t)
	eventType := newEventType("appointment.booked")

	var calls attempts
	var once sync.Once
	succeeded := make(chan struct{})
	bus := startBus(t, cfg, deadletter.Config{Adapter: a}, handler{
		name: "book_room", eventType: eventType,
		policy: core.Policy{MaxRetries: 3, Initial: cfg.Pause, Multiplier: 1},
		fn: func(ctx context.Context, ev core.Event) error {
			if calls.record(ev) < 3 {
				return errHandlerFailed
			}
			once.Do(func() { close(succeeded) })
			return nil
		},
	})
	bus.publish(t, newEvent(t, eventType, nil))

	select {
	case <-succeeded:
	case <-time.After(cfg.Timeout):
		t.Fatalf("a handler that fails twice must get a third attempt; it ran %d times in %s",
			calls.count(), cfg.Timeout)
	}
	holds(t, cfg.quietPeriod(), func() bool { return calls.count() == 3 && dlqLen(t, a.DLQ()) == 0 },
		func() string {
			return fmt.Sprintf("an event handled on its third attempt must be neither delivered again nor "+
				"dead-lettered; the handler ran %d times and the DLQ holds %d entries",
				calls.count(), dlqLen(t, a.DLQ()))
		})
}

func checkRetryAfter(t testing.TB, cfg Config) {
	a := cfg.NewAdapter(t)
	eventType := newEventType("invoice.paid")
	policyPause := 40 * cfg.Pause

	var calls attempts
	var once sync.Once
	succeeded := make(chan struct{})
	bus := startBus(t, cfg, deadletter.Config{Adapter: a}, handler{
		name: "notify_billing", eventType: eventType,
		policy: core.Policy{MaxRetries: 1, Initial: policyPause},
		fn: func(ctx context.Context, ev core.Event) error {
			if calls.record(ev) == 1 {
				return core.RetryAfter(errors.New("billing api rate limited"), cfg.Pause)
			}
			once.Do(func() { close(succeeded) })
			return nil
		},
	})
	bus.publish(t, newEvent(t, eventType, nil))

	select {
	case <-succeeded:
	case <-time.After(cfg.Timeout):
		t.Fatalf("an error asking for a retry after %s must be retried; the handler ran %d times in %s",
			cfg.Pause, calls.count(), cfg.Timeout)
	}

	times := calls.calls()
	gap := times[1].Sub(times[0])
	low, _ := pauseBounds(cfg.Pause)
	if gap < low {
		t.Errorf("a retry must wait the %s its error asked for; it came after %s", cfg.Pause, gap)
	}
	if gap >= policyPause/2 {
		t.Errorf("the pause an error asks for, %s, must replace the policy's %s; the retry came after %s",
			cfg.Pause, policyPause, gap)
	}
}

func checkSkip(t testing.TB, cfg Config) {
	a := cfg.NewAdapter(t)
	eventType := newEventType("patient.registered")

	var calls attempts
	bus := startBus(t, cfg, deadletter.Config{Adapter: a}, handler{
		name: "send_welcome_email", eventType: eventType,
		policy: core.Policy{MaxRetries: 3, Initial: cfg.Pause},
		fn: func(ctx context.Context, ev core.Event) error {
			calls.record(ev)
			return core.Skip(errors.New("welcome email already sent"))
		},
	})
	bus.publish(t, newEvent(t, eventType, nil))

	waitFor(t, cfg.Timeout, func() bool { return calls.count() > 0 }, func() string {
		return "a published event must reach its handler"
	})
	holds(t, cfg.quietPeriod(), func() bool { return calls.count() == 1 && dlqLen(t, a.DLQ()) == 0 },
		func() string {
			return fmt.Sprintf("a skipped event must be acknowledged, neither retried nor dead-lettered; "+
				"the handler ran %d times and the DLQ holds %d entries", calls.count(), dlqLen(t, a.DLQ()))
		})
}

func checkPermanentError(t testing.TB, cfg Config) {
	a := cfg.NewAdapter(t)
	eventType := newEventType("patient.registered")

	// The policy's pauses are long, so that a retry would push the entry
	// past the wait and fail the contract.
	var calls attempts
	bus := startBus(t, cfg, deadletter.Config{Adapter: a}, handler{
		name: "create_billing_account", eventType: eventType,
		policy: core.Policy{MaxRetries: 3, Initial: 40 * cfg.Pause},
		fn: func(ctx context.Context, ev core.Event) error {
			calls.record(ev)
			return core.Permanent(errors.New("insurance number is invalid"))
		},
	})
	bus.publish(t, newEvent(t, eventType, nil))

	entries := waitEntries(t, cfg, a.DLQ(), 1, func() string {
		return fmt.Sprintf("a permanent error must be dead-lettered after its first attempt; the handler "+
			"ran %d times and the DLQ is still empty", calls.count())
	})
	holds(t, cfg.quietPeriod(), func() bool { return calls.count() == 1 }, func() string {
		return fmt.Sprintf("a permanent error must not be retried; the handler ran %d times", calls.count())
	})

	entry := entries[0]
	if entry.Attempts != 1 {
		t.Errorf("a permanent error's entry must count 1 attempt, not %d", entry.Attempts)
	}
	if entry.ErrorType != core.ErrorTypePermanent {
		t.Errorf("a permanent error must be dead-lettered with error_type %q, not %q",
			core.ErrorTypePermanent, entry.ErrorType)
	}
	if entry.Error != "insurance number is invalid" {
		t.Errorf("the entry's error must be the handler's message %q, not %q",
			"insurance number is invalid", entry.Error)
	}
}

func checkPanic(t testing.TB, cfg Config) {
	a := cfg.NewAdapter(t)
	eventType := newEventType("patient.registered")
	policy := core.Policy{MaxRetries: 1, Initial: cfg.Pause}

	var calls attempts
	bus := startBus(t, cfg, deadletter.Config{Adapter: a}, handler{
		name: "index_patient", eventType: eventType, policy: policy,
		fn: func(ctx context.Context, ev core.Event) error {
			calls.record(ev)
			panic("search index is corrupt")
		},
	})
	bus.publish(t, newEvent(t, eventType, nil))

	entries := waitEntries(t, cfg, a.DLQ(), 1, func() string {
		return fmt.Sprintf("a handler that panics must be dead-lettered after its one attempt; "+
			"it ran %d times and the DLQ is still empty", calls.count())
	})

	entry := entries[0]
	if got := calls.count(); got != 1 {
		t.Errorf("a panicking handler must run once, since a panic is dead-lettered at once; it ran %d times", got)
	}
	if entry.Attempts != 1 {
		t.Errorf("a panic's entry must record 1 attempt, not %d", entry.Attempts)
	}
	if entry.ErrorType != core.ErrorTypePanic {
		t.Errorf("a panic must be dead-lettered with error_type %q, not %q", core.ErrorTypePanic, entry.ErrorType)
	}
	if !strings.Contains(entry.Error, "search index is corrupt") {
		t.Errorf("a panic's entry must keep the panic message in its error; got %q", entry.Error)
	}
	if !strings.Contains(entry.Error, "goroutine") {
		t.Errorf("a panic's entry must keep the stack in its error; got %q", entry.Error)
	}
}
