//go:build faults

package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/core"
)

// outage is one stop of the broker.
type outage struct {
	kill     bool // stop abruptly, where the broker supports it
	downtime time.Duration
}

func TestBrokerRestart(t *testing.T) {
	t.Run("LosesNoEventOnRedis", func(t *testing.T) {
		broker := startRedisBroker(t)
		// With the defaults of go-redis v9.23, a client retries a failed
		// command for about 2 s, which hides short outages from the
		// adapter. Without retries, the test checks the adapter's own
		// handling of failed calls.
		url := broker.URL() + "?max_retries=-1"
		runRestartScenario(t, broker, ConsumerConfig{Adapter: "redis", BrokerURL: url},
			[]outage{{kill: false, downtime: 500 * time.Millisecond}, {kill: true, downtime: 2 * time.Second}})
	})
	t.Run("LosesNoEventOnNATS", func(t *testing.T) {
		broker := startNATSBroker(t)
		runRestartScenario(t, broker, ConsumerConfig{Adapter: "nats", BrokerURL: broker.URL()},
			[]outage{{downtime: 500 * time.Millisecond}, {downtime: 2 * time.Second}})
	})
}

// Pacing of the restart scenario: events are published in batches of
// restartBatch every restartPause, for the whole scenario.
const (
	restartEvents = 1500
	restartBatch  = 10
	restartPause  = 25 * time.Millisecond
	// publishBound bounds one Publish call of the test's publisher, as a
	// caller's request context would.
	publishBound = 2 * time.Second
	// poisonRate is the fraction of (event, handler) pairs whose every
	// call fails, so that events are dead-lettered, some of them during
	// the outages.
	poisonRate = 0.01
	// settleBound bounds the wait, after the last restart, for every pair
	// to be handled or dead-lettered.
	settleBound = 30 * time.Second
)

// runRestartScenario runs one bus whose handlers fail at random while
// events are published and the broker stops and starts again at each of
// outages. The publisher publishes each batch again until Publish returns
// nil. Once every event is published, it checks that every handler handled
// or dead-lettered every event, with the same bus running throughout.
func runRestartScenario(t *testing.T, broker restartableBroker, cfg ConsumerConfig, outages []outage) {
	// The lines of failing handlers are expected; the adapter's are not.
	logs := newLogCounter(t.Output(), "handler attempt failed", "retry scheduled", "event dead-lettered")
	adapter, err := NewAdapter(cfg, logs.logger())
	require.NoError(t, err)
	t.Cleanup(func() { _ = adapter.Close() })

	events := newEvents(t, restartEvents)
	ids := make(map[string]bool, len(events))
	for _, ev := range events {
		ids[ev.EventID] = true
	}
	records := newCallRecords(events)
	bus, err := deadletter.New(deadletter.Config{
		Adapter:       adapter,
		Policy:        Policy,
		DLQRetryPause: 50 * time.Millisecond,
		CloseTimeout:  5 * time.Second,
		Logger:        logs.logger(),
	})
	require.NoError(t, err)
	for _, name := range Handlers {
		require.NoError(t, bus.Handle(name, EventType, records.handler(name)))
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- bus.Run(ctx) }()
	select {
	case <-bus.Running():
	case <-time.After(scenarioTimeout):
		t.Fatalf("bus did not start within %s", scenarioTimeout)
	}

	publisher := &retryingPublisher{bus: bus}
	published := make(chan struct{})
	go func() {
		defer close(published)
		publisher.publishAll(events)
	}()

	// Each outage starts after some events have flowed since the last one.
	var upAt []time.Time
	for i, o := range outages {
		time.Sleep(time.Duration(500+rand.IntN(500)) * time.Millisecond)
		broker.Stop(t, o.kill)
		time.Sleep(o.downtime)
		broker.Start(t)
		upAt = append(upAt, time.Now())
		t.Logf("outage %d of %d: broker down for %s (%s)", i+1, len(outages), o.downtime, broker.StopName(o.kill))
	}
	select {
	case <-published:
	case <-time.After(scenarioTimeout):
		t.Fatalf("publishing %d events took over %s", len(events), scenarioTimeout)
	}

	// A lost pair never settles, so the wait ends at a deadline and the
	// table shows how many pairs are missing.
	deadline := time.Now().Add(settleBound)
	result := tallyRecords(t, records, adapter.DLQ(), ids)
	for result.lost > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		result = tallyRecords(t, records, adapter.DLQ(), ids)
	}
	settled := time.Since(upAt[len(upAt)-1])

	cancel()
	select {
	case err := <-ran:
		require.NoError(t, err)
	case <-time.After(shutdownBound):
		t.Fatalf("Run did not return within %s of its context ending", shutdownBound)
	}
	require.NoError(t, bus.Close())
	result = tallyRecords(t, records, adapter.DLQ(), ids)

	resumed := make([]string, len(upAt))
	for i, at := range upAt {
		resumed[i] = records.resumedAfter(publisher.publishedAt, at).Round(10 * time.Millisecond).String()
		t.Logf("outage %d: first publish returned nil %s after the restart; a handler was first called "+
			"for an event published after the restart %s after it", i+1,
			publisher.firstAfter(at).Round(10*time.Millisecond), resumed[i])
	}
	t.Logf("every pair was handled or dead-lettered %s after the last restart",
		settled.Round(10*time.Millisecond))
	downtimes := make([]string, len(outages))
	for i, o := range outages {
		downtimes[i] = o.downtime.String() + " after " + broker.StopName(o.kill)
	}
	stats := publisher.snapshot()
	note := fmt.Sprintf("%d restarts, down %s; publish errors: %d, longest call %s; handling resumed %s "+
		"after the restarts", len(outages), strings.Join(downtimes, ", "), stats.errors,
		stats.longest.Round(time.Millisecond), strings.Join(resumed, ", "))
	report(t, "broker-restart", cfg.Adapter, len(events), len(Handlers), result, note)
	logDLQReasons(t, adapter.DLQ())
	logs.summarize(t)
	if stats.errors > 0 {
		t.Logf("last publish error: %v", stats.lastError)
	}

	require.Zero(t, result.lost, "every event must be handled or dead-lettered by every handler")
	require.Zero(t, result.unknown, "the DLQ must hold only events the test published")
	require.GreaterOrEqual(t, result.deadLettered, records.poisoned(),
		"every event that always fails must be dead-lettered")
	require.Less(t, stats.longest, publishBound+time.Second,
		"a Publish call must return within its context's deadline")
}

// callRecords keeps, in the test process, what the handlers did, so that
// the records never depend on the broker that is being restarted.
type callRecords struct {
	mu sync.Mutex
	// handled counts each handler's successful calls per event id.
	handled map[string]map[string]int
	// calls holds when any handler was called for each event id.
	calls map[string][]time.Time
	// poison holds the handler + " " + event id pairs whose every call
	// fails. It is not changed after newCallRecords.
	poison map[string]bool
}

func newCallRecords(events []core.Event) *callRecords {
	r := &callRecords{handled: map[string]map[string]int{}, calls: map[string][]time.Time{},
		poison: map[string]bool{}}
	for _, h := range Handlers {
		r.handled[h] = map[string]int{}
		for _, ev := range events {
			if rand.Float64() < poisonRate {
				r.poison[h+" "+ev.EventID] = true
			}
		}
	}
	return r
}

// poisoned returns the number of pairs whose every call fails.
func (r *callRecords) poisoned() int { return len(r.poison) }

// handler returns a handler that fails every call of a poisoned pair and
// failRate of the other calls, and records the calls that succeed.
func (r *callRecords) handler(name string) deadletter.HandlerFunc {
	return func(_ context.Context, ev core.Event) error {
		r.mu.Lock()
		r.calls[ev.EventID] = append(r.calls[ev.EventID], time.Now())
		r.mu.Unlock()

		// A poisoned call takes longer, so that some are running when the
		// broker stops and their DLQ writes fail.
		if r.poison[name+" "+ev.EventID] {
			time.Sleep(time.Duration(100+rand.IntN(200)) * time.Millisecond)
			return errInjected
		}
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		if rand.Float64() < failRate {
			return errInjected
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.handled[name][ev.EventID]++
		return nil
	}
}

// resumedAfter returns how long after at a handler was first called, after
// at, for an event published after at: an upper bound of how long the
// subscriptions took to read again after a restart. An event may have been
// handled before at, if it was stored by a Publish call that failed and
// published again.
func (r *callRecords) resumedAfter(publishedAt func() map[string]time.Time, at time.Time) time.Duration {
	published := publishedAt()
	r.mu.Lock()
	defer r.mu.Unlock()
	first := time.Time{}
	for id, when := range published {
		if when.Before(at) {
			continue
		}
		for _, called := range r.calls[id] {
			if called.After(at) && (first.IsZero() || called.Before(first)) {
				first = called
			}
		}
	}
	if first.IsZero() {
		return -1
	}
	return first.Sub(at)
}

func tallyRecords(t *testing.T, records *callRecords, dlq core.DLQ, ids map[string]bool) tally {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	entries, err := allEntries(ctx, dlq)
	require.NoError(t, err)

	records.mu.Lock()
	defer records.mu.Unlock()
	return tallyPairs(records.handled, entries, ids)
}

// retryingPublisher publishes batches of events, each again until Publish
// returns nil, and counts the calls that failed.
type retryingPublisher struct {
	bus *deadletter.Bus

	mu        sync.Mutex
	published map[string]time.Time // event id -> when its Publish call returned nil
	stats     publishStats
}

type publishStats struct {
	errors    int           // Publish calls that returned an error
	lastError error         // the last of them
	longest   time.Duration // the longest Publish call, failed or not
}

func (p *retryingPublisher) publishAll(events []core.Event) {
	p.mu.Lock()
	p.published = make(map[string]time.Time, len(events))
	p.mu.Unlock()
	for start := 0; start < len(events); start += restartBatch {
		batch := events[start:min(start+restartBatch, len(events))]
		for !p.publish(batch) {
			time.Sleep(restartPause)
		}
		time.Sleep(restartPause)
	}
}

// publish publishes batch once and reports whether Publish returned nil.
func (p *retryingPublisher) publish(batch []core.Event) bool {
	ctx, cancel := context.WithTimeout(context.Background(), publishBound)
	defer cancel()
	began := time.Now()
	err := p.bus.Publish(ctx, batch...)
	took := time.Since(began)

	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.longest = max(p.stats.longest, took)
	if err != nil {
		p.stats.errors++
		p.stats.lastError = err
		return false
	}
	now := time.Now()
	for _, ev := range batch {
		p.published[ev.EventID] = now
	}
	return true
}

func (p *retryingPublisher) publishedAt() map[string]time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]time.Time, len(p.published))
	for id, at := range p.published {
		out[id] = at
	}
	return out
}

// firstAfter returns how long after at the first Publish call that
// returned nil after at returned.
func (p *retryingPublisher) firstAfter(at time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	first := time.Time{}
	for _, when := range p.published {
		if when.After(at) && (first.IsZero() || when.Before(first)) {
			first = when
		}
	}
	return first.Sub(at)
}

func (p *retryingPublisher) snapshot() publishStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// sortedCounts returns the keys of counts, most frequent first.
func sortedCounts(counts map[string]int) []string {
	keys := make([]string, 0, len(counts))
	for key := range counts {
		keys = append(keys, key)
	}
	slices.SortFunc(keys, func(a, b string) int { return counts[b] - counts[a] })
	return keys
}
