package hospital_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/adapters/nats"
	"github.com/deadletter/deadletter/config"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/examples/hospital"
	"github.com/deadletter/deadletter/internal/testredis"
)

// outcome is what a demo run must produce the same on every broker.
type outcome struct {
	Attempts  map[string]int
	Succeeded map[string]int
	Timeline  []string
	Entry     map[string]string
}

// TestDemoOnEveryBroker runs the demo through the config package on each
// broker and requires the same attempts, timeline and DLQ entry from each.
func TestDemoOnEveryBroker(t *testing.T) {
	brokers := []struct {
		name string
		cfg  func(t *testing.T) config.Config
	}{
		{"redis", redisConfig},
		{"nats", natsConfig},
		{"embedded", func(t *testing.T) config.Config {
			return config.Config{Broker: config.BrokerEmbedded, DataDir: t.TempDir()}
		}},
		{"memory", func(*testing.T) config.Config { return config.Config{Broker: config.BrokerMemory} }},
	}

	outcomes := map[string]outcome{}
	for _, broker := range brokers {
		t.Run(broker.name, func(t *testing.T) {
			outcomes[broker.name] = runDemo(t, broker.cfg(t))
		})
	}

	want, ok := outcomes["redis"]
	require.True(t, ok, "the Redis run is the reference")
	require.Equal(t, map[string]int{hospital.SendWelcomeEmail: 3, hospital.CreateBillingAccount: 1,
		hospital.SyncToLegacy: 4, hospital.SendAppointmentReminder: 2}, want.Attempts)
	for name, got := range outcomes {
		require.Equal(t, want.Attempts, got.Attempts, "attempts per handler on %s", name)
		require.Equal(t, want.Succeeded, got.Succeeded, "successes per handler on %s", name)
		require.Equal(t, want.Timeline, got.Timeline, "timeline on %s", name)
		require.Equal(t, want.Entry, got.Entry, "DLQ entry on %s, ids and times aside", name)
	}
}

// runDemo runs the demo with pauses of 20, 40 and 80 ms and returns its
// outcome with ids and times removed.
func runDemo(t *testing.T, cfg config.Config) outcome {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := config.Open(ctx, cfg, slog.New(slog.DiscardHandler), config.WithRedisBlock(20*time.Millisecond))
	require.NoError(t, err)
	defer b.Close()

	var out bytes.Buffer
	summary, err := hospital.Run(ctx, hospital.Config{Adapter: b.Adapter, Scale: 0.01, Out: &out,
		InspectHint: b.InspectHint})
	require.NoError(t, err)

	n, err := b.Adapter.DLQ().Len(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the DLQ holds exactly the legacy sync's entry")
	require.Len(t, summary.DeadLettered, 1)
	if b.InspectHint != "" {
		require.Contains(t, out.String(), "Inspect the DLQ with: "+b.InspectHint)
	}

	return outcome{
		Attempts:  summary.Attempts,
		Succeeded: summary.Succeeded,
		Timeline:  timeline(out.String()),
		Entry:     comparableEntry(t, summary.DeadLettered[0]),
	}
}

// attemptLine matches a timeline line: seconds, handler, event type,
// attempt and outcome.
var attemptLine = regexp.MustCompile(`^\s*\d+\.\d+s\s+(\S+\s+\S+\s+attempt \d+\s+.*)$`)

// timeline returns the attempt lines without their times, sorted, since
// handlers of one event run side by side.
func timeline(out string) []string {
	var lines []string
	for line := range strings.SplitSeq(out, "\n") {
		if m := attemptLine.FindStringSubmatch(line); m != nil {
			lines = append(lines, strings.Join(strings.Fields(m[1]), " "))
		}
	}
	slices.Sort(lines)
	return lines
}

// comparableEntry returns an entry's fields without those that differ from
// run to run or name the broker's streams.
func comparableEntry(t *testing.T, e core.Entry) map[string]string {
	fields := map[string]string{}
	all := e.Fields()
	for i := 0; i+1 < len(all); i += 2 {
		fields[all[i]] = all[i+1]
	}
	for _, name := range []string{core.FieldEventID, core.FieldFailedAt, core.FieldFirstFailedAt,
		core.FieldSourceStream, core.FieldSourceID} {
		require.NotEmpty(t, fields[name], "field %s", name)
		delete(fields, name)
	}

	var event map[string]any
	require.NoError(t, json.Unmarshal(e.EventData, &event))
	delete(event, "event_id")
	delete(event, "occurred_at")
	data, err := json.Marshal(event)
	require.NoError(t, err)
	fields[core.FieldEventData] = string(data)
	return fields
}

// redisConfig returns the test Redis under a fresh prefix whose keys are
// deleted when the test ends.
func redisConfig(t *testing.T) config.Config {
	url, prefix := testredis.URL(t), testredis.Prefix()
	client := testredis.Client(t)
	t.Cleanup(func() {
		ctx := context.Background()
		keys, err := client.Keys(ctx, prefix+":*").Result()
		if err == nil && len(keys) > 0 {
			client.Del(ctx, keys...)
		}
	})
	return config.Config{Broker: config.BrokerRedis, Redis: config.RedisConfig{URL: config.ServerURL(url)},
		Prefix: prefix}
}

// natsConfig returns the NATS server at NATS_URL, or one started in the
// test, under a fresh prefix whose streams are deleted when the test ends.
func natsConfig(t *testing.T) config.Config {
	url := os.Getenv("NATS_URL")
	if url == "" {
		var shutdown func()
		var err error
		url, shutdown, err = nats.StartEmbedded(t.TempDir())
		require.NoError(t, err)
		t.Cleanup(shutdown)
	}
	prefix := "t" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	t.Cleanup(func() { deleteNATSStreams(t, url, prefix) })
	return config.Config{Broker: config.BrokerNATS, NATS: config.NATSConfig{URL: config.ServerURL(url)},
		Prefix: prefix}
}

// deleteNATSStreams removes the streams and bucket of a prefix, so that a
// run against a shared server leaves nothing behind.
func deleteNATSStreams(t *testing.T, url, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := nats.DeleteStreams(ctx, url, prefix); err != nil {
		t.Logf("clean up: %v", err)
	}
}
