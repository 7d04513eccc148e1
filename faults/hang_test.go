//go:build faults

package faults

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/testredis"
)

// Scaled times of the hanging handler scenario.
const (
	// hangEvents is the number of events published; one in hangEvery
	// hangs.
	hangEvents = 600
	hangEvery  = 20
	// hangPublishTime is how long publishing takes.
	hangPublishTime = 1500 * time.Millisecond
	// hangTimeout is the Timeout of the hanging handlers' policy.
	hangTimeout = 200 * time.Millisecond
	// hangIgnoring is how long the handler that ignores its context blocks
	// on a hanging event before it returns nil.
	hangIgnoring = 500 * time.Millisecond
)

// Handlers of the hanging handler scenario.
const (
	handlerSteady  = "fault_steady"
	handlerHonours = "fault_hang_honours_ctx"
	handlerIgnores = "fault_hang_ignores_ctx"
)

// hangPolicy gives each attempt hangTimeout: three attempts, then the DLQ.
var hangPolicy = core.Policy{Initial: 10 * time.Millisecond, MaxRetries: 2, Timeout: hangTimeout}

func TestHangingHandler(t *testing.T) {
	t.Run("TimesOutAndDeadLettersOnRedis", func(t *testing.T) {
		cfg := ConsumerConfig{Adapter: "redis", BrokerURL: testredis.URL(t), Prefix: testredis.Prefix()}
		cleanRedisPrefix(t, cfg.Prefix)
		runHangScenario(t, cfg)
	})
	t.Run("TimesOutAndDeadLettersOnNATS", func(t *testing.T) {
		runHangScenario(t, natsConfig(t))
	})
}

// hangProbe records what the hanging calls do.
type hangProbe struct {
	// hanging counts the calls blocked on a hanging event right now.
	hanging atomic.Int64
	// flowed counts, per handler, the events handled while a call hung.
	flowed sync.Map // handler -> *atomic.Int64

	mu sync.Mutex
	// ignoring counts the calls of the handler that ignores its context
	// that are still running, per event.
	ignoring map[string]int
	// maxOverlap is the most calls of one event that ran at once in the
	// handler that ignores its context.
	maxOverlap int
	// calls counts the hanging calls of that handler, and late the ones
	// that returned after their context had ended.
	calls, late int
}

func (p *hangProbe) flowedIn(handler string) *atomic.Int64 {
	n, _ := p.flowed.LoadOrStore(handler, &atomic.Int64{})
	return n.(*atomic.Int64)
}

// success counts a handled event as flowing past a hanging call if one is
// blocked now.
func (p *hangProbe) success(handler string) {
	if p.hanging.Load() > 0 {
		p.flowedIn(handler).Add(1)
	}
}

// ignoreContext blocks for hangIgnoring whatever ctx does, as a handler
// stuck in a call without a deadline would.
func (p *hangProbe) ignoreContext(ctx context.Context, id string) {
	p.mu.Lock()
	p.calls++
	p.ignoring[id]++
	p.maxOverlap = max(p.maxOverlap, p.ignoring[id])
	p.mu.Unlock()

	p.hanging.Add(1)
	time.Sleep(hangIgnoring)
	p.hanging.Add(-1)
	// On a starved machine the context's timer may not have fired yet, so
	// the deadline shows whether the call outlived its attempt.
	deadline, _ := ctx.Deadline()

	p.mu.Lock()
	defer p.mu.Unlock()
	p.ignoring[id]--
	if p.ignoring[id] == 0 {
		delete(p.ignoring, id)
	}
	if !deadline.IsZero() && time.Now().After(deadline) {
		p.late++
	}
}

func (p *hangProbe) stillRunning() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, calls := range p.ignoring {
		n += calls
	}
	return n
}

// runHangScenario runs a steady handler beside two that hang on one event
// in hangEvery: one until its context ends, one for hangIgnoring whatever
// the context does. It checks that the timeout fails each hanging attempt,
// that the hanging pairs reach the DLQ as timeouts after every attempt,
// and that the other events keep flowing meanwhile.
func runHangScenario(t *testing.T, cfg ConsumerConfig) {
	events := newEvents(t, hangEvents)
	ids := map[string]bool{}
	hangs := map[string]bool{}
	for i, ev := range events {
		ids[ev.EventID] = true
		hangs[ev.EventID] = i%hangEvery == 0
	}
	handlers := []string{handlerSteady, handlerHonours, handlerIgnores}
	poisoned := func(handler, id string) bool { return handler != handlerSteady && hangs[id] }

	logger := slog.New(newLogCapture())
	adapter, err := NewAdapter(cfg, logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = adapter.Close() })
	bus, err := deadletter.New(deadletter.Config{
		Adapter:      adapter,
		Policy:       Policy,
		CloseTimeout: 5 * time.Second,
		Logger:       logger,
	})
	require.NoError(t, err)

	done := newOutcomes(handlers)
	probe := &hangProbe{ignoring: map[string]int{}}
	succeed := func(handler, id string) error {
		done.success(handler, id)
		probe.success(handler)
		return nil
	}
	require.NoError(t, bus.Handle(handlerSteady, EventType, func(_ context.Context, ev core.Event) error {
		return succeed(handlerSteady, ev.EventID)
	}))
	require.NoError(t, bus.Handle(handlerHonours, EventType, func(ctx context.Context, ev core.Event) error {
		if !hangs[ev.EventID] {
			return succeed(handlerHonours, ev.EventID)
		}
		probe.hanging.Add(1)
		defer probe.hanging.Add(-1)
		<-ctx.Done()
		return ctx.Err()
	}, deadletter.WithPolicy(hangPolicy)))
	require.NoError(t, bus.Handle(handlerIgnores, EventType, func(ctx context.Context, ev core.Event) error {
		if !hangs[ev.EventID] {
			return succeed(handlerIgnores, ev.EventID)
		}
		probe.ignoreContext(ctx, ev.EventID)
		// The work finished, after the middleware gave up on it.
		return nil
	}, deadletter.WithPolicy(hangPolicy)))
	stop := runBus(t, bus)

	published := publishPaced(t, bus, events, hangPublishTime)
	select {
	case err := <-published:
		require.NoError(t, err, "publish the events")
	case <-time.After(scenarioTimeout):
		t.Fatalf("publishing %d events took over %s", len(events), scenarioTimeout)
	}
	var result tally
	var wrong []string
	deadline := time.Now().Add(scenarioTimeout)
	for {
		result, wrong = done.tally(t, adapter.DLQ(), ids, poisoned)
		if result.lost == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	// Calls that ignore their context outlive the bus; the test bounds them.
	waitFor(t, 2*hangIgnoring, "the calls that ignore their context to return", func() bool {
		return probe.stillRunning() == 0
	})
	result, wrong = done.tally(t, adapter.DLQ(), ids, poisoned)

	hangingPairs := 0
	for id := range hangs {
		if hangs[id] {
			hangingPairs += 2
		}
	}
	probe.mu.Lock()
	calls, late, overlap := probe.calls, probe.late, probe.maxOverlap
	probe.mu.Unlock()
	flowed := map[string]int64{}
	for _, h := range handlers {
		flowed[h] = probe.flowedIn(h).Load()
	}
	note := fmt.Sprintf("Timeout %s; %d of %d calls ignoring ctx returned late, up to %d at once per event; "+
		"%d pairs handled while a call hung", hangTimeout, late, calls, overlap, sumValues64(flowed))
	report(t, "hanging-handler", cfg.Adapter, len(events), len(handlers), result, note)
	t.Logf("%s: %d hanging pairs; events handled while a call hung, per handler: %v", cfg.Adapter,
		hangingPairs, flowed)
	logDLQReasons(t, adapter.DLQ())

	require.Zero(t, result.lost, "every pair must be handled or dead-lettered: %v", firstOf(wrong))
	require.Empty(t, firstOf(wrong), "hanging pairs must be dead-lettered and the others handled; %d are not",
		len(wrong))
	require.Zero(t, result.unknown, "the DLQ must hold only events the test published")
	require.Equal(t, hangingPairs, result.deadLettered, "every hanging pair must be in the DLQ")
	if odd := checkTimeoutEntries(t, adapter.DLQ()); len(odd) > 0 {
		t.Logf("%s: entries of overlapping deliveries: %v", cfg.Adapter, odd)
	}
	for _, h := range handlers {
		require.Positive(t, flowed[h], "handler %s must handle events while a call hangs", h)
	}
	require.Equal(t, calls, late, "every call ignoring its context must have been given up on before it returned")
}

// checkTimeoutEntries checks that each entry is a timeout after every
// attempt, with an error that names the timeout. It returns how many
// entries differ from that and how. Only a delivery that overlapped another
// of the same event writes such an entry, as checkDLQEntries explains.
func checkTimeoutEntries(t *testing.T, dlq core.DLQ) (odd map[string]int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	entries, err := allEntries(ctx, dlq)
	require.NoError(t, err)

	odd = map[string]int{}
	for _, e := range entries {
		switch e.ErrorType {
		case core.ErrorTypeRedeliveryLimit:
		case core.ErrorTypeTimeout:
			require.Contains(t, e.Error, core.ErrTimeout.Error(), "entry %s of %s", e.ID, e.Handler)
			require.Contains(t, e.Error, hangTimeout.String(), "entry %s of %s must name the timeout",
				e.ID, e.Handler)
			require.GreaterOrEqual(t, e.Attempts, hangPolicy.MaxAttempts(), "entry %s of %s", e.ID, e.Handler)
		default:
			require.Failf(t, "wrong error type", "entry %s of %s has error type %s: %s", e.ID, e.Handler,
				e.ErrorType, e.Error)
		}
		if e.Handler == handlerIgnores && e.ErrorType == core.ErrorTypeTimeout {
			require.True(t, strings.Contains(e.Error, "still running") || strings.Contains(e.Error, "returned after"),
				"entry %s of %s must say that the call ran past its timeout: %s", e.ID, e.Handler, e.Error)
		}
		if e.ErrorType != core.ErrorTypeTimeout || e.Attempts != hangPolicy.MaxAttempts() {
			odd[fmt.Sprintf("%s after %d attempts", e.ErrorType, e.Attempts)]++
		}
	}
	return odd
}

func sumValues64(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
