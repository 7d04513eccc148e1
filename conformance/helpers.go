package conformance

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	deadletter "github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/core"
)

// busCloseTimeout bounds how long stopping a bus waits for its handlers.
// Contract handlers return at once, so reaching it means the adapter hangs.
const busCloseTimeout = 5 * time.Second

// pollInterval is how often waits check their condition.
const pollInterval = 5 * time.Millisecond

// newEventType returns an event type that no other contract or run uses.
func newEventType(name string) string {
	id := strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	return "conf." + id + "." + name
}

// newEvent returns a valid event of the given type about a new patient.
func newEvent(t testing.TB, eventType string, data any) core.Event {
	t.Helper()
	if data == nil {
		data = map[string]any{"name": "Ada Lovelace", "ward": "cardiology"}
	}
	ev, err := core.NewEvent(eventType, "patient", uuid.NewString(), data)
	if err != nil {
		t.Fatalf("conformance: create event: %v", err)
	}
	return ev
}

// marshal returns the JSON form that Bus.Publish puts on the broker.
func marshal(t testing.TB, ev core.Event) []byte {
	t.Helper()
	raw, err := ev.Marshal()
	if err != nil {
		t.Fatalf("conformance: marshal event: %v", err)
	}
	return raw
}

// handler is one handler to register on a bus.
type handler struct {
	name      string
	eventType string
	fn        deadletter.HandlerFunc

	// policy is the handler's own policy. The zero value keeps the bus's.
	policy core.Policy
}

// runningBus is a bus whose Run is in progress.
type runningBus struct {
	*deadletter.Bus
	done     chan error
	stopOnce sync.Once
}

// startBus creates a bus from bc, registers the handlers, runs it and
// waits until every handler has subscribed. It registers stopping the bus
// with t.Cleanup, and stop ends it earlier.
func startBus(t testing.TB, cfg Config, bc deadletter.Config, handlers ...handler) *runningBus {
	t.Helper()
	bc.Logger = cfg.Logger
	bc.CloseTimeout = busCloseTimeout

	bus, err := deadletter.New(bc)
	if err != nil {
		t.Fatalf("conformance: create bus: %v", err)
	}
	for _, h := range handlers {
		var opts []deadletter.HandlerOption
		if h.policy != (core.Policy{}) {
			opts = append(opts, deadletter.WithPolicy(h.policy))
		}
		if err := bus.Handle(h.name, h.eventType, h.fn, opts...); err != nil {
			t.Fatalf("conformance: Subscriber(%q) of adapter %s must succeed: %v", h.name, bc.Adapter.Name(), err)
		}
	}

	rb := &runningBus{Bus: bus, done: make(chan error, 1)}
	go func() { rb.done <- bus.Run(context.Background()) }()
	t.Cleanup(func() { rb.stop(t) })

	select {
	case <-bus.Running():
	case err := <-rb.done:
		rb.done <- err
		t.Fatalf("conformance: bus stopped before its handlers subscribed: %v", err)
	case <-time.After(cfg.Timeout):
		t.Fatalf("conformance: handlers of adapter %s must subscribe within %s", bc.Adapter.Name(), cfg.Timeout)
	}
	return rb
}

// stop closes the bus and waits for Run to return.
func (b *runningBus) stop(t testing.TB) {
	t.Helper()
	b.stopOnce.Do(func() {
		if err := b.Close(); err != nil {
			t.Errorf("conformance: closing a bus must stop its subscribers within %s: %v", busCloseTimeout, err)
		}
		select {
		case err := <-b.done:
			if err != nil {
				t.Errorf("conformance: bus Run must end without error after Close: %v", err)
			}
		case <-time.After(2 * busCloseTimeout):
			t.Errorf("conformance: bus Run must return after Close")
		}
	})
}

// publish publishes the events through the bus.
func (b *runningBus) publish(t testing.TB, events ...core.Event) {
	t.Helper()
	if err := b.Publish(context.Background(), events...); err != nil {
		t.Fatalf("conformance: publishing %d events must succeed: %v", len(events), err)
	}
}

// waitFor polls cond until it holds, or fails t after the timeout with the
// message that broken returns then.
func waitFor(t testing.TB, timeout time.Duration, cond func() bool, broken func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s (waited %s)", broken(), timeout)
		}
		time.Sleep(pollInterval)
	}
}

// holds polls cond for the whole of d and fails t with the message that
// broken returns as soon as cond stops holding.
func holds(t testing.TB, d time.Duration, cond func() bool, broken func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if !cond() {
			t.Fatal(broken())
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(pollInterval)
	}
}

// quietPeriod is how long a contract watches for something that must not
// happen, such as a handler call after its event was dead-lettered.
func (cfg Config) quietPeriod() time.Duration {
	return max(4*cfg.Pause, 200*time.Millisecond)
}

// dlqLen returns the DLQ's length, failing t if Len returns an error.
func dlqLen(t testing.TB, dlq core.DLQ) int64 {
	t.Helper()
	n, err := dlq.Len(context.Background())
	if err != nil {
		t.Fatalf("DLQ.Len must succeed: %v", err)
	}
	return n
}

// listAll returns every entry of the DLQ, or of its replayed store, newest
// first.
func listAll(t testing.TB, dlq core.DLQ, replayed bool) []core.Entry {
	t.Helper()
	entries, err := dlq.List(context.Background(), core.ListOptions{Limit: 10_000, Replayed: replayed})
	if err != nil {
		t.Fatalf("DLQ.List must succeed: %v", err)
	}
	return entries
}

// waitEntries waits until the DLQ holds n entries and returns all entries,
// newest first.
func waitEntries(t testing.TB, cfg Config, dlq core.DLQ, n int, broken func() string) []core.Entry {
	t.Helper()
	waitFor(t, cfg.Timeout, func() bool { return dlqLen(t, dlq) >= int64(n) }, broken)
	return listAll(t, dlq, false)
}

// attempts records the calls of a handler.
type attempts struct {
	mu    sync.Mutex
	times []time.Time
	byID  map[string]int
}

// record notes a call for the event and returns how many calls the event
// has had, this one included.
func (a *attempts) record(ev core.Event) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.byID == nil {
		a.byID = map[string]int{}
	}
	a.times = append(a.times, time.Now())
	a.byID[ev.EventID]++
	return a.byID[ev.EventID]
}

// count returns the number of calls for all events.
func (a *attempts) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.times)
}

// of returns the number of calls for one event.
func (a *attempts) of(eventID string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.byID[eventID]
}

// events returns how many distinct events were handled.
func (a *attempts) events() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.byID)
}

// calls returns the call times in order.
func (a *attempts) calls() []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.times...)
}

// requireCapability skips t when the adapter lacks a capability.
func requireCapability(t testing.TB, a core.Adapter, name string, has bool) {
	t.Helper()
	if !has {
		t.Skipf("adapter %s does not declare Capabilities.%s", a.Name(), name)
	}
}

// errHandlerFailed is the error of handlers that fail on purpose.
var errHandlerFailed = errors.New("mail server timed out")
