// Package hospital is the demo of deadletter: a hospital information system
// whose handlers fail in the three ways that matter. send_welcome_email times
// out twice and then succeeds, create_billing_account succeeds at once, and
// sync_to_legacy always fails, so its event ends in the dead letter queue.
//
// The deadletter CLI runs it as `deadletter demo`; its test runs it with
// scaled pauses.
package hospital

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/core"
)

// Handler names of the demo.
const (
	SendWelcomeEmail         = "send_welcome_email"
	CreateBillingAccount     = "create_billing_account"
	SyncToLegacy             = "sync_to_legacy"
	SendAppointmentReminder  = "send_appointment_reminder"
	welcomeEmailFailures     = 2
	defaultDemoTimeoutFactor = 4
)

// Config configures one run of the demo.
type Config struct {
	// Adapter is the broker to run on. Required.
	Adapter core.Adapter

	// Scale multiplies the default pauses of 2 s, 4 s and 8 s; 0.01 makes
	// the demo finish in a fraction of a second. 0 means 1.
	Scale float64

	// Out receives the timeline, the dead-lettered entry and the summary.
	Out io.Writer

	// Logger receives the framework's structured logs. nil discards them.
	Logger *slog.Logger

	// InspectHint, when set, is printed at the end as the command that
	// shows the DLQ on this broker.
	InspectHint string
}

// Summary is the outcome of a run.
type Summary struct {
	Published    int
	Attempts     map[string]int
	Succeeded    map[string]int
	DeadLettered []core.Entry
	Elapsed      time.Duration
}

// Run publishes the demo's events, waits until every handler has finished
// with them, prints the outcome to cfg.Out and returns it.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	if cfg.Adapter == nil {
		return Summary{}, fmt.Errorf("%w: demo: Adapter is missing", core.ErrInvalidConfig)
	}
	if cfg.Scale < 0 {
		return Summary{}, fmt.Errorf("%w: demo: Scale must not be negative", core.ErrInvalidConfig)
	}
	if cfg.Scale == 0 {
		cfg.Scale = 1
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}

	d := newDemo(cfg)
	return d.run(ctx)
}

type demo struct {
	cfg    Config
	policy core.Policy
	start  time.Time

	mu        sync.Mutex
	attempts  map[string]int
	succeeded map[string]int
	// eventAttempts counts attempts per handler and event.
	eventAttempts map[string]int
	// welcomeTries counts send_welcome_email's attempts per event.
	welcomeTries map[string]int
	expected     map[string]int
	// own holds the ids of the events this run published.
	own      map[string]bool
	done     chan struct{}
	doneOnce sync.Once
}

func newDemo(cfg Config) *demo {
	initial := time.Duration(float64(core.DefaultInitial) * cfg.Scale)
	if initial < time.Millisecond {
		initial = time.Millisecond
	}
	return &demo{
		cfg:           cfg,
		policy:        core.Policy{Initial: initial},
		attempts:      map[string]int{},
		succeeded:     map[string]int{},
		eventAttempts: map[string]int{},
		welcomeTries:  map[string]int{},
		done:          make(chan struct{}),
	}
}

func (d *demo) run(ctx context.Context) (Summary, error) {
	bus, err := deadletter.New(deadletter.Config{Adapter: d.cfg.Adapter, Policy: d.policy, Logger: d.cfg.Logger})
	if err != nil {
		return Summary{}, err
	}
	defer bus.Close()
	if err := d.register(bus); err != nil {
		return Summary{}, err
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- bus.Run(runCtx) }()
	select {
	case <-bus.Running():
	case err := <-runErr:
		return Summary{}, fmt.Errorf("demo: start bus: %w", err)
	case <-ctx.Done():
		return Summary{}, ctx.Err()
	}

	events, err := demoEvents()
	if err != nil {
		return Summary{}, err
	}
	d.expectOutcomes(events)
	d.start = time.Now()
	d.printf("Publishing %d events on %s; pauses before retries: %s, %s, %s\n\n", len(events),
		d.cfg.Adapter.Name(), d.policy.Pause(1), d.policy.Pause(2), d.policy.Pause(3))
	if err := bus.Publish(ctx, events...); err != nil {
		return Summary{}, fmt.Errorf("demo: %w", err)
	}

	entry, err := d.waitForOutcome(ctx, bus.DLQ(), events[0].EventID)
	if err != nil {
		return Summary{}, err
	}
	stop()
	if err := <-runErr; err != nil {
		return Summary{}, fmt.Errorf("demo: run bus: %w", err)
	}

	summary := d.summary(len(events), entry)
	d.printEntry(entry)
	d.printSummary(summary)
	return summary, nil
}

// expectOutcomes records how many successes each handler owes before the
// demo is over: every handler but sync_to_legacy succeeds once per event.
func (d *demo) expectOutcomes(events []core.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expected = map[string]int{}
	d.own = map[string]bool{}
	for _, ev := range events {
		d.own[ev.EventID] = true
		switch ev.EventType {
		case "patient.registered":
			d.expected[SendWelcomeEmail]++
			d.expected[CreateBillingAccount]++
		case "appointment.booked":
			d.expected[SendAppointmentReminder]++
		}
	}
}

func (d *demo) register(bus *deadletter.Bus) error {
	handlers := []struct {
		name, eventType string
		fn              deadletter.HandlerFunc
	}{
		{SendWelcomeEmail, "patient.registered", d.sendWelcomeEmail},
		{CreateBillingAccount, "patient.registered", d.succeed(CreateBillingAccount)},
		{SyncToLegacy, "patient.registered", d.syncToLegacy},
		{SendAppointmentReminder, "appointment.booked", d.succeed(SendAppointmentReminder)},
	}
	for _, h := range handlers {
		if err := bus.Handle(h.name, h.eventType, d.onlyOwnEvents(h.fn)); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	return nil
}

// onlyOwnEvents skips events that this run did not publish. The streams and
// consumer groups outlive a run, so events of an earlier run that was
// interrupted, or of another program, may still be waiting for a handler.
func (d *demo) onlyOwnEvents(fn deadletter.HandlerFunc) deadletter.HandlerFunc {
	return func(ctx context.Context, ev core.Event) error {
		d.mu.Lock()
		own := d.own[ev.EventID]
		d.mu.Unlock()
		if !own {
			return core.Skip(fmt.Errorf("event %s was not published by this demo run", ev.EventID))
		}
		return fn(ctx, ev)
	}
}

// errSMTPTimeout is the welcome mail server's transient failure.
var errSMTPTimeout = errors.New("smtp: dial mail.hospital.example:587: i/o timeout")

func (d *demo) sendWelcomeEmail(_ context.Context, ev core.Event) error {
	d.mu.Lock()
	d.welcomeTries[ev.EventID]++
	try := d.welcomeTries[ev.EventID]
	d.mu.Unlock()

	if try <= welcomeEmailFailures {
		d.record(SendWelcomeEmail, ev, errSMTPTimeout)
		return errSMTPTimeout
	}
	d.record(SendWelcomeEmail, ev, nil)
	return nil
}

func (d *demo) syncToLegacy(_ context.Context, ev core.Event) error {
	err := errors.New("legacy HIS rejected the record: connection refused by legacy-his.hospital.example:2575")
	d.record(SyncToLegacy, ev, err)
	return err
}

func (d *demo) succeed(handler string) deadletter.HandlerFunc {
	return func(_ context.Context, ev core.Event) error {
		d.record(handler, ev, nil)
		return nil
	}
}

// record prints one attempt on the timeline and counts it.
func (d *demo) record(handler string, ev core.Event, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.attempts[handler]++
	d.eventAttempts[handler+"/"+ev.EventID]++
	outcome := "ok"
	if err != nil {
		outcome = "failed: " + err.Error()
	} else {
		d.succeeded[handler]++
	}
	d.printf("%7.2fs  %-26s %-19s attempt %d  %s\n", time.Since(d.start).Seconds(), handler,
		ev.EventType, d.eventAttempts[handler+"/"+ev.EventID], outcome)
	d.checkDone()
}
