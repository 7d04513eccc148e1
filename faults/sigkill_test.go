//go:build faults

package faults

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/adapters/nats"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/testredis"
)

// failRate is the fraction of handler calls that fail on purpose.
const failRate = 0.05

// killPoisonRate is the fraction of (event, handler) pairs that fail on every
// attempt, so that DLQ writes happen while consumers are stopped.
const killPoisonRate = 0.01

func TestSIGKILL(t *testing.T) {
	runOnBothAdapters(t, "LosesNoEvent", func(t *testing.T, cfg ConsumerConfig) {
		runKillScenario(t, cfg, syscall.SIGKILL)
	})
}

// TestSIGTERM stops consumers the way a service manager does: handlers
// finish and acknowledge, so few events are handled twice.
func TestSIGTERM(t *testing.T) {
	runOnBothAdapters(t, "LosesNoEvent", func(t *testing.T, cfg ConsumerConfig) {
		runKillScenario(t, cfg, syscall.SIGTERM)
	})
}

// runOnBothAdapters runs scenario as the subtests name+"OnRedis" and
// name+"OnNATS", each with a new prefix.
func runOnBothAdapters(t *testing.T, name string, scenario func(*testing.T, ConsumerConfig)) {
	t.Run(name+"OnRedis", func(t *testing.T) {
		scenario(t, ConsumerConfig{
			Adapter:   "redis",
			BrokerURL: testredis.URL(t),
			Prefix:    testredis.Prefix(),
		})
	})
	t.Run(name+"OnNATS", func(t *testing.T) {
		url := natsURL(t)
		prefix := "t" + uuid.NewString()[:8]
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = nats.DeleteStreams(ctx, url, prefix)
		})
		scenario(t, ConsumerConfig{Adapter: "nats", BrokerURL: url, Prefix: prefix})
	})
}

// natsURL returns NATS_URL, or the URL of an embedded server that runs
// until the test ends.
func natsURL(t *testing.T) string {
	t.Helper()
	if url := os.Getenv("NATS_URL"); url != "" {
		return url
	}
	url, shutdown, err := nats.StartEmbedded(t.TempDir())
	require.NoError(t, err, "set NATS_URL to use a running server, such as nats://127.0.0.1:4222")
	t.Cleanup(shutdown)
	return url
}

// runKillScenario publishes events while it stops the consumer with sig a
// few times, then lets a last consumer finish and checks that
// every handler handled or dead-lettered every event.
func runKillScenario(t *testing.T, cfg ConsumerConfig, sig syscall.Signal) {
	n := eventCount(t)
	cfg.RecordURL = testredis.URL(t)
	cfg.RecordKey = "test-" + uuid.NewString()[:8] + ":faults"
	cfg.FailRate = failRate
	cfg.PoisonRate = killPoisonRate
	records := testredis.Client(t)
	t.Cleanup(func() {
		keys := make([]string, len(Handlers))
		for i, h := range Handlers {
			keys[i] = cfg.RecordKey + ":" + h
		}
		records.Del(context.Background(), keys...)
	})

	adapter, err := NewAdapter(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = adapter.Close() })
	publisher, err := deadletter.New(deadletter.Config{Adapter: adapter})
	require.NoError(t, err)

	events := newEvents(t, n)
	ids := make(map[string]bool, n)
	for _, ev := range events {
		ids[ev.EventID] = true
	}
	kills := 3 + rand.IntN(3)
	published := publishPaced(t, publisher, events, time.Duration(kills)*400*time.Millisecond)

	var longestStop time.Duration
	for i := range kills {
		c := startConsumer(t, cfg)
		time.Sleep(time.Duration(150+rand.IntN(650)) * time.Millisecond)
		if sig == syscall.SIGKILL {
			c.kill(t)
		} else {
			started := time.Now()
			c.stop(t)
			longestStop = max(longestStop, time.Since(started))
		}
		t.Logf("stop %d of %d: %s sent to consumer %d", i+1, kills, sig, c.cmd.Process.Pid)
	}
	select {
	case err := <-published:
		require.NoError(t, err)
	case <-time.After(scenarioTimeout):
		t.Fatalf("publishing %d events took over %s", n, scenarioTimeout)
	}

	// A lost pair never settles, so the wait ends at a deadline and the
	// table shows how many pairs are missing.
	last := startConsumer(t, cfg)
	deadline := time.Now().Add(30*time.Second + time.Duration(n)*time.Millisecond)
	tally := count(t, records, adapter.DLQ(), cfg.RecordKey, ids)
	for tally.lost > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		tally = count(t, records, adapter.DLQ(), cfg.RecordKey, ids)
	}
	last.stop(t)
	tally = count(t, records, adapter.DLQ(), cfg.RecordKey, ids)

	poisoned, poisonedDead := poisonedPairs(t, cfg, adapter.DLQ(), events)
	scenario, note := "sigkill", fmt.Sprintf("%d kills", kills)
	if sig != syscall.SIGKILL {
		scenario, note = "sigterm", fmt.Sprintf("%d stops, longest %s", kills, longestStop.Round(time.Millisecond))
	}
	note += fmt.Sprintf("; %d of %d poisoned pairs dead-lettered", poisonedDead, poisoned)
	report(t, scenario, cfg.Adapter, n, len(Handlers), tally, note)
	logDLQReasons(t, adapter.DLQ())
	require.Zero(t, tally.lost, "every event must be handled or dead-lettered by every handler")
	require.Zero(t, tally.unknown, "the DLQ must hold only events the test published")
	require.Equal(t, poisoned, poisonedDead, "every poisoned pair must be dead-lettered")
}

// poisonedPairs returns how many (event, handler) pairs of events cfg
// poisons, and how many of them have a DLQ entry with the poison error.
func poisonedPairs(t *testing.T, cfg ConsumerConfig, dlq core.DLQ, events []core.Event) (poisoned, dead int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	entries, err := allEntries(ctx, dlq)
	require.NoError(t, err)
	found := map[string]bool{}
	for _, e := range entries {
		if e.Error == errPoisoned.Error() {
			found[e.Handler+" "+e.EventID] = true
		}
	}
	for _, ev := range events {
		for _, h := range Handlers {
			if !cfg.Poisoned(ev.EventID, h) {
				continue
			}
			poisoned++
			if found[h+" "+ev.EventID] {
				dead++
			}
		}
	}
	return poisoned, dead
}

// publishPaced publishes events in batches spread over about d, and
// reports the outcome on the returned channel.
func publishPaced(t *testing.T, bus *deadletter.Bus, events []core.Event, d time.Duration) <-chan error {
	t.Helper()
	const batch = 50
	pause := d / time.Duration((len(events)+batch-1)/batch)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
		defer cancel()
		for start := 0; start < len(events); start += batch {
			end := min(start+batch, len(events))
			if err := bus.Publish(ctx, events[start:end]...); err != nil {
				done <- err
				return
			}
			time.Sleep(pause)
		}
		done <- nil
	}()
	return done
}

// tally counts (event, handler) pairs.
type tally struct {
	handled      int // pairs handled successfully at least once
	deadLettered int // pairs with a DLQ entry
	lost         int // pairs neither handled nor dead-lettered
	duplicates   int // pairs handled more than once, or dead-lettered more than once
	both         int // pairs both handled and dead-lettered
	unknown      int // DLQ entries of events or handlers the test does not know
}

func count(t *testing.T, records *redis.Client, dlq core.DLQ, recordKey string, ids map[string]bool) tally {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	entries, err := allEntries(ctx, dlq)
	require.NoError(t, err)
	handled := map[string]map[string]int{}
	for _, h := range Handlers {
		raw, err := records.HGetAll(ctx, recordKey+":"+h).Result()
		require.NoError(t, err)
		handled[h] = map[string]int{}
		for id, value := range raw {
			calls, err := strconv.Atoi(value)
			require.NoError(t, err)
			handled[h][id] = calls
		}
	}
	return tallyPairs(handled, entries, ids)
}

// tallyPairs counts the (event, handler) pairs of the events in ids, from
// the successful calls of each handler per event id and the DLQ entries.
func tallyPairs(handled map[string]map[string]int, entries []core.Entry, ids map[string]bool) tally {
	var result tally
	dead := map[string]int{} // handler + " " + event id
	for _, e := range entries {
		if !ids[e.EventID] {
			continue
		}
		dead[e.Handler+" "+e.EventID]++
	}

	seen := 0
	for _, h := range Handlers {
		for id, calls := range handled[h] {
			result.handled++
			if calls > 1 {
				result.duplicates++
			}
			if dead[h+" "+id] > 0 {
				result.both++
			}
		}
		for key, times := range dead {
			if !strings.HasPrefix(key, h+" ") {
				continue
			}
			seen += times
			result.deadLettered++
			if times > 1 {
				result.duplicates++
			}
		}
	}
	result.unknown = len(entries) - seen
	result.lost = len(ids)*len(Handlers) - (result.handled + result.deadLettered - result.both)
	return result
}

// report logs one row of the fault table and appends it to the file named
// by FAULTS_REPORT, which scripts/faults prints. Pairs are (event, handler)
// pairs: published times the number of handlers.
func report(t *testing.T, scenario, adapter string, published, handlers int, r tally, note string) {
	t.Helper()
	row := fmt.Sprintf("| %-16s | %-7s | %9d | %6d | %7d | %13d | %4d | %10d | %s |\n",
		scenario, adapter, published, published*handlers, r.handled, r.deadLettered, r.lost, r.duplicates, note)
	t.Logf("scenario, adapter, published, pairs, handled, dead-lettered, lost, duplicates, notes:\n%s", row)
	if r.both > 0 {
		t.Logf("%d pairs were both handled and dead-lettered", r.both)
	}
	path := os.Getenv("FAULTS_REPORT")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	defer f.Close()
	_, err = f.WriteString(row)
	require.NoError(t, err)
}

// logDLQReasons logs how many DLQ entries each error type, error and
// attempt count has.
func logDLQReasons(t *testing.T, dlq core.DLQ) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	entries, err := allEntries(ctx, dlq)
	require.NoError(t, err)
	reasons := map[string]int{}
	for _, e := range entries {
		reasons[fmt.Sprintf("%s after %d attempts: %s", e.ErrorType, e.Attempts, e.Error)]++
	}
	for reason, times := range reasons {
		t.Logf("dlq: %d entries: %s", times, reason)
	}
}
