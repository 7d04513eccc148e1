//go:build faults

package faults

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/adapters/nats"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/testredis"
)

// Scaled times of the DLQ outage scenario.
const (
	// outageEvents is the number of events published.
	outageEvents = 3000
	// outagePublishTime is how long publishing takes.
	outagePublishTime = 3 * time.Second
	// outageStart is how long after publishing starts the DLQ stops
	// accepting writes.
	outageStart = 700 * time.Millisecond
	// outageLength is how long the DLQ stays unwritable.
	outageLength = 1500 * time.Millisecond
	// outageDLQRetryPause is the bus's DLQRetryPause: the pause before an
	// event whose DLQ write failed is delivered again.
	outageDLQRetryPause = 100 * time.Millisecond
	// minRateDuringOutage is the lowest rate of handled pairs while the DLQ
	// is unwritable, as a fraction of the rate before. Failed events delivered
	// again every outageDLQRetryPause slow the others down; a stall stops
	// them.
	minRateDuringOutage = 0.25
)

// Log messages of a failed DLQ write and of the first write that succeeds
// after failed ones.
const (
	msgDLQWriteFailed    = "dead letter write failed; event left unacknowledged"
	msgDLQWriteRecovered = "dead letter write succeeded after failed writes"
)

func TestDLQUnwritable(t *testing.T) {
	t.Run("KeepsFailedEventsPendingOnRedis", func(t *testing.T) {
		cfg := ConsumerConfig{Adapter: "redis", BrokerURL: testredis.URL(t), Prefix: testredis.Prefix()}
		cleanRedisPrefix(t, cfg.Prefix)
		runDLQOutage(t, cfg, redisDLQBlocker(t, cfg.Prefix+":dlq"))
	})
	t.Run("KeepsFailedEventsPendingOnNATS", func(t *testing.T) {
		cfg := natsConfig(t)
		runDLQOutage(t, cfg, natsDLQBlocker(t, cfg.BrokerURL, strings.ToUpper(cfg.Prefix)+"_DLQ"))
	})
}

// natsConfig returns the config of a NATS consumer with a prefix of its
// own, whose streams are deleted when the test ends.
func natsConfig(t *testing.T) ConsumerConfig {
	t.Helper()
	url := natsURL(t)
	prefix := "t" + uuid.NewString()[:8]
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = nats.DeleteStreams(ctx, url, prefix)
	})
	return ConsumerConfig{Adapter: "nats", BrokerURL: url, Prefix: prefix}
}

// cleanRedisPrefix deletes the keys under prefix when the test ends.
func cleanRedisPrefix(t *testing.T, prefix string) {
	t.Helper()
	client := testredis.Client(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
	})
}

// dlqBlocker makes the DLQ reject writes on the broker, then accept them
// again with every entry it held before.
type dlqBlocker struct {
	mechanism string
	block     func(t *testing.T)
	restore   func(t *testing.T)
}

// redisDLQBlocker renames the DLQ stream aside and puts a string in its
// place, so that every XADD to it fails with WRONGTYPE. Both steps run in
// one MULTI, so no entry slips in between.
func redisDLQBlocker(t *testing.T, stream string) dlqBlocker {
	client := testredis.Client(t)
	aside := stream + ":aside"
	return dlqBlocker{
		mechanism: "DLQ key replaced by a string",
		block: func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			pipe := client.TxPipeline()
			pipe.Rename(ctx, stream, aside)
			pipe.Set(ctx, stream, "not a stream", 0)
			_, err := pipe.Exec(ctx)
			require.NoError(t, err, "replace the DLQ stream %s", stream)
		},
		restore: func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			pipe := client.TxPipeline()
			pipe.Del(ctx, stream)
			pipe.Rename(ctx, aside, stream)
			_, err := pipe.Exec(ctx)
			require.NoError(t, err, "put the DLQ stream %s back", stream)
		},
	}
}

// natsDLQBlocker moves the DLQ stream off its subject, so that no stream
// stores what the adapter publishes there. The server replies "no
// responders", as it does for a deleted stream, and the stream keeps the
// entries it holds. Restoring gives the stream its subject back. Capping the
// stream with MaxMsgs and the DiscardNew policy instead was tried:
// nats-server 2.15.3 keeps the entries, but 2.9.10 drops all but MaxMsgs of
// them.
func natsDLQBlocker(t *testing.T, url, name string) dlqBlocker {
	conn, err := natsgo.Connect(url)
	require.NoError(t, err)
	t.Cleanup(conn.Close)
	js, err := jetstream.New(conn)
	require.NoError(t, err)

	update := func(t *testing.T, subjects func(jetstream.StreamConfig) []string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stream, err := js.Stream(ctx, name)
		require.NoError(t, err)
		info := stream.CachedInfo()
		changed := info.Config
		changed.Subjects = subjects(info.Config)
		stream, err = js.UpdateStream(ctx, changed)
		require.NoError(t, err, "set the subjects of the DLQ stream %s to %v", name, changed.Subjects)
		after, err := stream.Info(ctx)
		require.NoError(t, err)
		require.GreaterOrEqual(t, after.State.Msgs, info.State.Msgs,
			"changing the subjects of the DLQ stream must keep its entries")
	}
	var original []string
	return dlqBlocker{
		mechanism: "DLQ stream moved off its subject",
		block: func(t *testing.T) {
			update(t, func(cfg jetstream.StreamConfig) []string {
				original = cfg.Subjects
				return []string{cfg.Subjects[0] + "-unwritable"}
			})
		},
		restore: func(t *testing.T) {
			update(t, func(jetstream.StreamConfig) []string { return original })
		},
	}
}

// poison is what one event does to one of the handlers.
type poison int

const (
	healthy        poison = iota
	failsOnce             // fails its first attempt, then succeeds
	failsAlways           // fails every attempt with a plain error
	failsPermanent        // fails with a permanent error
)

// outagePlan decides the fate of each (event, handler) pair. About one
// event in seven always fails in one handler, half of those with a
// permanent error. One event in ten fails its first attempt in another
// handler.
type outagePlan struct {
	events []core.Event
	ids    map[string]bool
	fate   map[string]poison // handler + " " + event id
}

func newOutagePlan(t *testing.T, n int) *outagePlan {
	p := &outagePlan{events: newEvents(t, n), ids: map[string]bool{}, fate: map[string]poison{}}
	for i, ev := range p.events {
		p.ids[ev.EventID] = true
		if i%7 == 0 {
			fate := failsAlways
			if (i/7)%2 == 0 {
				fate = failsPermanent
			}
			p.fate[Handlers[i%len(Handlers)]+" "+ev.EventID] = fate
		}
		if i%10 == 3 {
			key := Handlers[(i+1)%len(Handlers)] + " " + ev.EventID
			if p.fate[key] == healthy {
				p.fate[key] = failsOnce
			}
		}
	}
	return p
}

func (p *outagePlan) of(handler, id string) poison { return p.fate[handler+" "+id] }

// poisoned reports whether the pair must end in the DLQ.
func (p *outagePlan) poisoned(handler, id string) bool {
	fate := p.of(handler, id)
	return fate == failsAlways || fate == failsPermanent
}

func (p *outagePlan) poisonedPairs() int {
	n := 0
	for _, fate := range p.fate {
		if fate == failsAlways || fate == failsPermanent {
			n++
		}
	}
	return n
}

// runDLQOutage runs a bus whose handlers fail on poisoned events while the
// DLQ is unwritable for outageLength. It checks that healthy events are
// still handled meanwhile and that every poisoned pair reaches the DLQ once
// it is back. It also checks that the failed writes are logged throttled.
func runDLQOutage(t *testing.T, cfg ConsumerConfig, blocker dlqBlocker) {
	plan := newOutagePlan(t, outageEvents)
	logs := newLogCapture(msgDLQWriteFailed, msgDLQWriteRecovered)
	logger := slog.New(logs)
	adapter, err := NewAdapter(cfg, logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = adapter.Close() })
	dlq := &countingDLQ{DLQ: adapter.DLQ(), failed: map[string][]time.Time{}}

	bus, err := deadletter.New(deadletter.Config{
		Adapter:       adapter,
		DLQ:           dlq,
		Policy:        Policy,
		DLQRetryPause: outageDLQRetryPause,
		CloseTimeout:  5 * time.Second,
		Logger:        logger,
	})
	require.NoError(t, err)
	done := newOutcomes(Handlers)
	attempts := map[string]int{}
	var attemptsMu sync.Mutex
	for _, name := range Handlers {
		require.NoError(t, bus.Handle(name, EventType, func(_ context.Context, ev core.Event) error {
			switch plan.of(name, ev.EventID) {
			case failsPermanent:
				return core.Permanent(fmt.Errorf("%w: bad data", errInjected))
			case failsAlways:
				return errInjected
			case failsOnce:
				attemptsMu.Lock()
				attempts[name+" "+ev.EventID]++
				first := attempts[name+" "+ev.EventID] == 1
				attemptsMu.Unlock()
				if first {
					return errInjected
				}
			}
			done.success(name, ev.EventID)
			return nil
		}))
	}
	stop := runBus(t, bus)

	start := time.Now()
	published := publishPaced(t, bus, plan.events, outagePublishTime)
	waitFor(t, scenarioTimeout, "a first DLQ entry", func() bool {
		n, err := adapter.DLQ().Len(context.Background())
		return err == nil && n > 0
	})
	time.Sleep(time.Until(start.Add(outageStart)))

	blocker.block(t)
	blockedAt := time.Now()
	blocked := true
	t.Cleanup(func() {
		if blocked {
			blocker.restore(t)
		}
	})
	time.Sleep(outageLength)
	duringOutage := done.handledBetween(blockedAt, time.Now())
	beforeOutage := done.handledBetween(start, blockedAt)
	// Writes that failed before restoring began failed before any write
	// succeeded again.
	restoring := time.Now()
	blocker.restore(t)
	blocked = false
	restoredAt := time.Now()

	select {
	case err := <-published:
		require.NoError(t, err, "publish the events")
	case <-time.After(scenarioTimeout):
		t.Fatalf("publishing %d events took over %s", len(plan.events), scenarioTimeout)
	}
	var result tally
	var wrong []string
	deadline := time.Now().Add(scenarioTimeout)
	for {
		result, wrong = done.tally(t, adapter.DLQ(), plan.ids, plan.poisoned)
		if result.lost == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	settled := time.Since(restoredAt)
	stop()
	result, wrong = done.tally(t, adapter.DLQ(), plan.ids, plan.poisoned)

	failedWrites := dlq.failures(time.Now())
	lines := logs.kept(msgDLQWriteFailed)
	note := fmt.Sprintf("%s for %s; %d pairs handled meanwhile; %d DLQ writes failed, logged %d times",
		blocker.mechanism, outageLength, duringOutage, sumValues(failedWrites), len(lines))
	report(t, "dlq-unwritable", cfg.Adapter, len(plan.events), len(Handlers), result, note)
	if len(lines) > 0 {
		t.Logf("%s: first failed DLQ write: %s", cfg.Adapter, recordAttrs(lines[0])[core.LogError])
	}
	t.Logf("%s: poisoned pairs %d; DLQ settled %s after it came back; failed DLQ writes per handler %v",
		cfg.Adapter, plan.poisonedPairs(), settled.Round(time.Millisecond), failedWrites)
	rateBefore := float64(beforeOutage) / blockedAt.Sub(start).Seconds()
	rateDuring := float64(duringOutage) / restoredAt.Sub(blockedAt).Seconds()
	t.Logf("%s: pairs handled per second: %.0f before the outage, %.0f during it", cfg.Adapter, rateBefore,
		rateDuring)
	logs.logCounts(t)
	logDLQReasons(t, adapter.DLQ())

	require.Zero(t, result.lost, "every pair must be handled or dead-lettered: %v", firstOf(wrong))
	require.Empty(t, firstOf(wrong), "poisoned pairs must be dead-lettered and healthy pairs handled; %d are not",
		len(wrong))
	require.Zero(t, result.unknown, "the DLQ must hold only events the test published")
	require.Equal(t, plan.poisonedPairs(), result.deadLettered, "every poisoned pair must be in the DLQ")
	if odd := checkDLQEntries(t, adapter.DLQ(), plan); len(odd) > 0 {
		t.Logf("%s: entries of overlapping deliveries: %v", cfg.Adapter, odd)
	}
	require.Positive(t, duringOutage, "healthy events must be handled while the DLQ is unwritable")
	require.GreaterOrEqual(t, rateDuring, rateBefore*minRateDuringOutage,
		"healthy events must be handled during the outage at %.0f%% of the rate before it or more",
		100*minRateDuringOutage)
	requireThrottled(t, lines, logs.kept(msgDLQWriteRecovered), failedWrites, dlq.failures(restoring),
		blockedAt, restoredAt)
}

// requireThrottled checks that each handler logged its failed DLQ writes at
// most once per second. These lines, with the line of the first write that
// succeeded again, must count every write that failed before the DLQ began
// to come back (failedBefore), and no more writes than failed in all. A
// write that was under way then can fail after the line of the first write
// that succeeded, so only the next failure line would count it.
func requireThrottled(t *testing.T, failures, recoveries []slog.Record, failed, failedBefore map[string]int,
	from, to time.Time) {
	t.Helper()
	require.NotEmpty(t, failures, "a failed DLQ write must be logged")
	maxLines := int((to.Sub(from)+time.Second-1)/time.Second) + 1
	for handler, records := range byHandler(failures) {
		require.LessOrEqual(t, len(records), maxLines,
			"handler %s logged %d failed DLQ writes in %s; expected at most one a second", handler,
			len(records), to.Sub(from).Round(time.Millisecond))
		for i, r := range records {
			require.Equal(t, core.LevelCritical, r.Level)
			if i > 0 {
				require.GreaterOrEqual(t, r.Time.Sub(records[i-1].Time), time.Second,
					"handler %s logged two failed DLQ writes less than a second apart", handler)
			}
		}
	}

	counted := map[string]int{}
	for handler, records := range byHandler(slices.Concat(failures, recoveries)) {
		for _, r := range records {
			var n int
			_, err := fmt.Sscan(recordAttrs(r)["suppressed"], &n)
			require.NoError(t, err, "a line of handler %s must count the lines held back", handler)
			counted[handler] += n
			if r.Message == msgDLQWriteFailed {
				counted[handler]++
			}
		}
	}
	recovered, failedLines := byHandler(recoveries), byHandler(failures)
	for handler, n := range failed {
		// A write under way when the DLQ came back can fail after the first
		// success, and start a failure line and a success line again.
		require.NotEmpty(t, recovered[handler], "handler %s must log that the DLQ takes writes again", handler)
		require.LessOrEqual(t, len(recovered[handler]), len(failedLines[handler]),
			"handler %s must log a success line only after a failure line", handler)
		require.LessOrEqual(t, counted[handler], n, "the lines of handler %s count more failed DLQ writes "+
			"than there were", handler)
		require.GreaterOrEqual(t, counted[handler], failedBefore[handler],
			"the lines of handler %s must count each DLQ write that failed during the outage", handler)
	}
}

// byHandler groups log records by their handler field.
func byHandler(records []slog.Record) map[string][]slog.Record {
	grouped := map[string][]slog.Record{}
	for _, r := range records {
		handler := recordAttrs(r)[core.LogHandler]
		grouped[handler] = append(grouped[handler], r)
	}
	return grouped
}

// checkDLQEntries checks each entry of a poisoned pair: a permanent error
// after one attempt, or a plain failure after every attempt. It returns how
// many entries differ from that and how. Only a delivery that overlapped
// another of the same event writes such an entry, as when the broker
// delivered a message again because its handler was starved past AckWait.
// That delivery has a higher delivery count, and it may have missed the
// retry state that the other delivery cleared, so its entry counts more
// attempts or has the error type redelivery_limit. Any other entry fails
// the test.
func checkDLQEntries(t *testing.T, dlq core.DLQ, plan *outagePlan) (odd map[string]int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	entries, err := allEntries(ctx, dlq)
	require.NoError(t, err)

	odd = map[string]int{}
	for _, e := range entries {
		fate := plan.of(e.Handler, e.EventID)
		want, attempts, msg := core.ErrorTypeFailure, Policy.MaxAttempts(), errInjected.Error()
		if fate == failsPermanent {
			want, attempts, msg = core.ErrorTypePermanent, 1, errInjected.Error()+": bad data"
		}
		require.True(t, fate == failsAlways || fate == failsPermanent, "entry %s of healthy pair %s %s",
			e.ID, e.Handler, e.EventID)
		switch {
		case e.ErrorType == core.ErrorTypeRedeliveryLimit:
			require.ErrorContains(t, errors.New(e.Error), core.ErrRedeliveryLimit.Error(), "entry %s", e.ID)
		case e.ErrorType == want:
			require.Equal(t, msg, e.Error, "entry %s", e.ID)
			require.GreaterOrEqual(t, e.Attempts, attempts, "entry %s", e.ID)
		default:
			require.Failf(t, "wrong error type", "entry %s of %s has error type %s; expected %s",
				e.ID, e.Handler, e.ErrorType, want)
		}
		if e.ErrorType != want || e.Attempts != attempts {
			odd[fmt.Sprintf("%s after %d attempts", e.ErrorType, e.Attempts)]++
		}
	}
	return odd
}

// runBus runs bus until the returned function is called, which cancels it
// and waits for Run to return.
func runBus(t *testing.T, bus *deadletter.Bus) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- bus.Run(ctx) }()
	select {
	case <-bus.Running():
	case err := <-result:
		cancel()
		t.Fatalf("bus stopped before it ran: %v", err)
	case <-time.After(scenarioTimeout):
		cancel()
		t.Fatalf("bus did not start within %s", scenarioTimeout)
	}

	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-result:
				require.NoError(t, err)
			case <-time.After(shutdownBound):
				t.Errorf("Run did not return within %s of its context ending", shutdownBound)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// outcomes records the successful handler calls of each (event, handler)
// pair and when the first one happened.
type outcomes struct {
	handlers []string
	mu       sync.Mutex
	calls    map[string]int       // handler + " " + event id
	first    map[string]time.Time // handler + " " + event id
}

func newOutcomes(handlers []string) *outcomes {
	return &outcomes{handlers: handlers, calls: map[string]int{}, first: map[string]time.Time{}}
}

func (o *outcomes) success(handler, id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	key := handler + " " + id
	o.calls[key]++
	if o.calls[key] == 1 {
		o.first[key] = time.Now()
	}
}

// handledBetween counts the pairs first handled between from and to.
func (o *outcomes) handledBetween(from, to time.Time) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, at := range o.first {
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return n
}

// tally counts the pairs of the events in ids, and lists the pairs that
// ended otherwise than expected: lost, dead-lettered when dead reports
// false for them, or handled when it reports true.
func (o *outcomes) tally(t *testing.T, dlq core.DLQ, ids map[string]bool, dead func(handler, id string) bool) (
	tally, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	entries, err := allEntries(ctx, dlq)
	require.NoError(t, err)

	var result tally
	entered := map[string]int{}
	for _, e := range entries {
		if !ids[e.EventID] || !slices.Contains(o.handlers, e.Handler) {
			result.unknown++
			continue
		}
		entered[e.Handler+" "+e.EventID]++
	}

	o.mu.Lock()
	defer o.mu.Unlock()
	var wrong []string
	for id := range ids {
		for _, h := range o.handlers {
			key := h + " " + id
			calls, entries := o.calls[key], entered[key]
			if calls > 0 {
				result.handled++
			}
			if entries > 0 {
				result.deadLettered++
			}
			if calls > 0 && entries > 0 {
				result.both++
			}
			if calls > 1 || entries > 1 {
				result.duplicates++
			}
			if calls == 0 && entries == 0 {
				result.lost++
				wrong = append(wrong, key+": lost")
				continue
			}
			if (entries > 0) != dead(h, id) || (calls > 0) == dead(h, id) {
				wrong = append(wrong, fmt.Sprintf("%s: handled %d times, %d DLQ entries", key, calls, entries))
			}
		}
	}
	slices.Sort(wrong)
	return result, wrong
}

// countingDLQ passes entries on to the adapter's DLQ and records, per
// handler, when the broker rejected a write.
type countingDLQ struct {
	core.DLQ
	mu     sync.Mutex
	failed map[string][]time.Time
}

func (d *countingDLQ) Add(ctx context.Context, e core.Entry) (string, error) {
	id, err := d.DLQ.Add(ctx, e)
	if err != nil {
		d.mu.Lock()
		d.failed[e.Handler] = append(d.failed[e.Handler], time.Now())
		d.mu.Unlock()
	}
	return id, err
}

// failures counts the rejected writes per handler that returned before
// until.
func (d *countingDLQ) failures(until time.Time) map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	counts := map[string]int{}
	for handler, times := range d.failed {
		for _, at := range times {
			if at.Before(until) {
				counts[handler]++
			}
		}
	}
	return counts
}

// firstOf returns the first ten items of list, to keep failure messages
// short.
func firstOf(list []string) []string {
	return list[:min(len(list), 10)]
}

func sumValues(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// logCapture is a slog handler that counts records of warning level and
// above by message, and keeps the records of the messages it is given.
type logCapture struct {
	state *logState
	attrs []slog.Attr
}

type logState struct {
	mu      sync.Mutex
	keep    []string
	counts  map[string]int
	records []slog.Record
}

func newLogCapture(keep ...string) *logCapture {
	return &logCapture{state: &logState{keep: keep, counts: map[string]int{}}}
}

func (c *logCapture) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn
}

func (c *logCapture) Handle(_ context.Context, r slog.Record) error {
	s := c.state
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[r.Message]++
	if slices.Contains(s.keep, r.Message) {
		r = r.Clone()
		r.AddAttrs(c.attrs...)
		s.records = append(s.records, r)
	}
	return nil
}

func (c *logCapture) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logCapture{state: c.state, attrs: append(slices.Clip(c.attrs), attrs...)}
}

// WithGroup drops the group: the tests read top-level fields only.
func (c *logCapture) WithGroup(string) slog.Handler { return c }

// kept returns the records kept with message msg, oldest first.
func (c *logCapture) kept(msg string) []slog.Record {
	c.state.mu.Lock()
	defer c.state.mu.Unlock()
	var records []slog.Record
	for _, r := range c.state.records {
		if r.Message == msg {
			records = append(records, r)
		}
	}
	return records
}

func (c *logCapture) logCounts(t *testing.T) {
	t.Helper()
	c.state.mu.Lock()
	defer c.state.mu.Unlock()
	for msg, n := range c.state.counts {
		t.Logf("log: %d lines: %s", n, msg)
	}
}

// recordAttrs returns the record's top-level fields as text.
func recordAttrs(r slog.Record) map[string]string {
	attrs := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.String()
		return true
	})
	return attrs
}
