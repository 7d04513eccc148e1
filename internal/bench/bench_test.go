package bench

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	natsadapter "github.com/deadletter/deadletter/adapters/nats"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/testredis"
)

// natsURL returns NATS_URL, the server on 127.0.0.1:4222 when it responds,
// or an embedded server that lives until the test ends.
func natsURL(t *testing.T) string {
	t.Helper()
	if url := os.Getenv("NATS_URL"); url != "" {
		return url
	}
	if pingNATS(context.Background(), DefaultNATSURL) == nil {
		return DefaultNATSURL
	}
	url, shutdown, err := natsadapter.StartEmbedded(t.TempDir())
	require.NoError(t, err, "start an embedded nats server, or set NATS_URL")
	t.Cleanup(shutdown)
	return url
}

// tinyConfig runs every case in a few seconds: 200 events, retry pauses
// of 10, 20 and 40 ms.
func tinyConfig(t *testing.T) Config {
	return Config{
		RedisURL:      testredis.URL(t),
		NATSURL:       natsURL(t),
		Events:        200,
		BatchSize:     20,
		Window:        100,
		MemoryEvents:  400,
		DLQEntries:    200,
		PageSize:      50,
		FailEvery:     10,
		ReplayWorkers: 3,
		FailPolicy:    core.Policy{Initial: 10 * time.Millisecond},
		CaseTimeout:   20 * time.Second,
	}
}

func TestRunEveryCase(t *testing.T) {
	client := testredis.Client(t)
	ctx := context.Background()
	keysBefore := countKeys(t, client, "bench-*")

	var streamed []string
	results, err := Run(ctx, tinyConfig(t), nil, func(r Result) { streamed = append(streamed, r.Case) })
	require.NoError(t, err)
	require.Equal(t, CaseNames(), streamed, "every case reports its result, in order")

	for _, r := range results {
		require.Empty(t, r.Skipped, "case %s skipped", r.Case)
		require.Positive(t, r.Count, "case %s counted nothing", r.Case)
		require.Positive(t, r.Rate(), "case %s has no rate", r.Case)
		require.Positive(t, r.PeakHeap, "case %s sampled no heap", r.Case)
		switch r.Case {
		case CaseReplay, CaseReplayParallel, CaseMemoryDLQList:
			require.Zero(t, r.P99, "case %s measures no latency", r.Case)
		default:
			require.Positive(t, r.P50, "case %s has no p50", r.Case)
			require.GreaterOrEqual(t, r.P99, r.P50, "case %s: p99 below p50", r.Case)
		}
	}

	byCase := map[string]Result{}
	for _, r := range results {
		byCase[r.Case] = r
	}
	require.Equal(t, 180, byCase[CaseHeadOfLine].Count, "head-of-line counts only the 180 healthy events")
	require.Len(t, byCase[CaseMemoryEvents].QuarterHeap, 4)
	require.Len(t, byCase[CaseMemoryDLQList].QuarterHeap, 4)
	require.Len(t, Goals(results), 8, "every goal can be checked when every case ran")

	require.Equal(t, keysBefore, countKeys(t, client, "bench-*"), "the cases delete their keys")
}

func TestRunSkipsNATSWithoutServer(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.NATSURL = "nats://127.0.0.1:1"
	results, err := Run(context.Background(), cfg, []string{CaseNATSRaw}, nil)
	require.NoError(t, err)
	require.Len(t, results, 1)
	require.Contains(t, results[0].Skipped, "no nats server")
}

func TestRunRejectsUnknownCase(t *testing.T) {
	_, err := Run(context.Background(), tinyConfig(t), []string{"redis-fast"}, nil)
	require.ErrorContains(t, err, `unknown case "redis-fast"`)
}

func TestConfigValidate(t *testing.T) {
	valid := Config{}.withDefaults()
	require.NoError(t, valid.Validate())

	tooWide := valid
	tooWide.Window = streamMaxLen
	require.ErrorIs(t, tooWide.Validate(), core.ErrInvalidConfig)

	batchOverWindow := valid
	batchOverWindow.BatchSize = valid.Window + 1
	require.ErrorIs(t, batchOverWindow.Validate(), core.ErrInvalidConfig)

	allFail := valid
	allFail.FailEvery = 1
	require.ErrorIs(t, allFail.Validate(), core.ErrInvalidConfig)
}

func TestHistogramQuantile(t *testing.T) {
	var h histogram
	require.Zero(t, h.quantile(0.99))
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Millisecond)
	}
	require.InEpsilon(t, float64(500*time.Millisecond), float64(h.quantile(0.50)), 0.04)
	require.InEpsilon(t, float64(990*time.Millisecond), float64(h.quantile(0.99)), 0.04)

	var small histogram
	small.record(42 * time.Microsecond)
	require.Equal(t, 42*time.Microsecond, small.quantile(0.5))
}

func TestSentAtReadsStamp(t *testing.T) {
	src := newEventSource(300)
	before := time.Now()
	_, payload, err := src.encoded()
	require.NoError(t, err)
	require.InDelta(t, 300, len(payload), 2, "the event is padded to the payload size")

	sent := sentAt(payload)
	require.False(t, sent.Before(before.Truncate(time.Nanosecond)))
	require.Equal(t, sent, sentAtString(string(payload)))
	require.True(t, sentAt([]byte(`{"no":"stamp"}`)).IsZero())
}

func TestQuartersClosesFour(t *testing.T) {
	mem := startSampler(time.Millisecond)
	q := newQuarters(100, mem)
	for done := 10; done <= 100; done += 10 {
		q.progress(done)
	}
	peaks := q.finish()
	mem.finish()
	require.Len(t, peaks, 4)
	for i, peak := range peaks {
		require.Positive(t, peak, "quarter %d", i+1)
	}
}

func countKeys(t *testing.T, client *redis.Client, match string) int {
	t.Helper()
	var cursor uint64
	count := 0
	for range 10_000 {
		keys, next, err := client.Scan(context.Background(), cursor, match, 1000).Result()
		require.NoError(t, err)
		count += len(keys)
		if next == 0 {
			return count
		}
		cursor = next
	}
	t.Fatal("scan did not finish after 10,000 calls")
	return 0
}

func TestMedianByRatePicksMiddle(t *testing.T) {
	rounds := []Result{
		{Case: "a", Count: 300, Elapsed: time.Second},
		{Case: "a", Count: 100, Elapsed: time.Second},
		{Case: "a", Count: 200, Elapsed: time.Second},
	}
	median := medianByRate(rounds)
	require.Equal(t, 200, median.Count)
	require.Len(t, median.Notes, 1)
	require.Contains(t, median.Notes[0], "rates 100 to 300 per second")
	require.Empty(t, rounds[2].Notes, "the rounds passed in are left unchanged")
}
