package bench

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/deadletter/deadletter/core"
)

// Defaults of Config.
const (
	DefaultRedisURL       = "redis://127.0.0.1:6379/0"
	DefaultNATSURL        = "nats://127.0.0.1:4222"
	DefaultEvents         = 100_000
	DefaultPayloadSize    = 256
	DefaultBatchSize      = 100
	DefaultWindow         = 2_000
	DefaultMemoryEvents   = 1_000_000
	DefaultDLQEntries     = 50_000
	DefaultPageSize       = 100
	DefaultFailEvery      = 100
	DefaultReplayWorkers  = 4
	DefaultCaseTimeout    = 10 * time.Minute
	DefaultSampleInterval = 10 * time.Millisecond
)

// streamMaxLen is the length every Redis case trims its event stream to,
// the Redis adapter's default, so that all of them pay for trimming alike.
// It must stay above Config.Window, or trimming could drop events that no
// handler has read yet.
const streamMaxLen = 10_000

// Config configures a benchmark run. A field left at 0 takes its default.
type Config struct {
	// RedisURL is the Redis server. "" means REDIS_URL when set, else
	// DefaultRedisURL.
	RedisURL string

	// NATSURL is the NATS server, with JetStream. "" means NATS_URL when
	// set, else DefaultNATSURL. The NATS cases are skipped, with the
	// reason, when it does not respond.
	NATSURL string

	// Events is the number of events each throughput case publishes. 0
	// means DefaultEvents (100,000).
	Events int

	// PayloadSize is the size of each event's JSON form in bytes; events
	// smaller than the bare event (about 250 bytes) are not padded. 0 means
	// DefaultPayloadSize (256).
	PayloadSize int

	// BatchSize is the number of events per publish call. 0 means
	// DefaultBatchSize (100).
	BatchSize int

	// Window is the most events published and not yet handled. 0 means
	// DefaultWindow (2,000); it must be below 10,000, the stream trim
	// length.
	Window int

	// MemoryEvents is the number of events the memory case passes through
	// the bus. 0 means DefaultMemoryEvents (1,000,000).
	MemoryEvents int

	// DLQEntries is the size of the DLQ that the replay and DLQ listing
	// cases fill first. 0 means DefaultDLQEntries (50,000).
	DLQEntries int

	// PageSize is the number of entries per DLQ list call. 0 means
	// DefaultPageSize (100).
	PageSize int

	// ReplayWorkers is the number of goroutines that replay entries in the
	// replay-parallel case. 0 means DefaultReplayWorkers (4).
	ReplayWorkers int

	// FailEvery makes one event in FailEvery fail for good in the
	// head-of-line case. 0 means DefaultFailEvery (100, which is 1 %).
	FailEvery int

	// FailPolicy is the retry policy of the head-of-line case. The zero
	// value is the default policy: 3 retries after 2 s, 4 s and 8 s.
	FailPolicy core.Policy

	// Rounds is how often the throughput cases run; each reports its
	// median round by rate. 0 means 1.
	Rounds int

	// CaseTimeout bounds each case. 0 means DefaultCaseTimeout (10 min).
	CaseTimeout time.Duration

	// SampleInterval is how often memory is sampled. 0 means
	// DefaultSampleInterval (10 ms).
	SampleInterval time.Duration

	// Logger receives progress lines. nil means no logging.
	Logger *slog.Logger

	// AdapterLogger receives the logs of the adapters and buses under test,
	// for diagnosing a slow case. nil means none, as a service logging at
	// info level logs nothing on the happy path.
	AdapterLogger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.RedisURL == "" {
		c.RedisURL = envOr("REDIS_URL", DefaultRedisURL)
	}
	if c.NATSURL == "" {
		c.NATSURL = envOr("NATS_URL", DefaultNATSURL)
	}
	c.Events = orDefault(c.Events, DefaultEvents)
	c.PayloadSize = orDefault(c.PayloadSize, DefaultPayloadSize)
	c.BatchSize = orDefault(c.BatchSize, DefaultBatchSize)
	c.Window = orDefault(c.Window, DefaultWindow)
	c.MemoryEvents = orDefault(c.MemoryEvents, DefaultMemoryEvents)
	c.DLQEntries = orDefault(c.DLQEntries, DefaultDLQEntries)
	c.PageSize = orDefault(c.PageSize, DefaultPageSize)
	c.FailEvery = orDefault(c.FailEvery, DefaultFailEvery)
	c.ReplayWorkers = orDefault(c.ReplayWorkers, DefaultReplayWorkers)
	c.Rounds = orDefault(c.Rounds, 1)
	c.CaseTimeout = orDefault(c.CaseTimeout, DefaultCaseTimeout)
	c.SampleInterval = orDefault(c.SampleInterval, DefaultSampleInterval)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.AdapterLogger == nil {
		c.AdapterLogger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first field of c that cannot be used.
func (c Config) Validate() error {
	switch {
	case c.Events < 0 || c.MemoryEvents < 0 || c.DLQEntries < 0:
		return fmt.Errorf("%w: bench: Events, MemoryEvents and DLQEntries must not be negative",
			core.ErrInvalidConfig)
	case c.PayloadSize < 0 || c.PayloadSize > 1<<20:
		return fmt.Errorf("%w: bench: PayloadSize is %d; it must be 0 to 1 MiB", core.ErrInvalidConfig, c.PayloadSize)
	case c.BatchSize < 0 || c.PageSize < 0 || c.ReplayWorkers < 0:
		return fmt.Errorf("%w: bench: BatchSize, PageSize and ReplayWorkers must not be negative",
			core.ErrInvalidConfig)
	case c.FailEvery < 0 || c.FailEvery == 1:
		return fmt.Errorf("%w: bench: FailEvery is %d; it must be 2 or more, or 0 for the default",
			core.ErrInvalidConfig, c.FailEvery)
	case c.Window < 0 || c.Window >= streamMaxLen:
		return fmt.Errorf("%w: bench: Window is %d; it must be below the stream trim length %d",
			core.ErrInvalidConfig, c.Window, streamMaxLen)
	case c.BatchSize > c.Window && c.Window > 0:
		return fmt.Errorf("%w: bench: BatchSize %d is larger than Window %d", core.ErrInvalidConfig, c.BatchSize, c.Window)
	case c.CaseTimeout < 0 || c.SampleInterval < 0 || c.Rounds < 0:
		return fmt.Errorf("%w: bench: Rounds, CaseTimeout and SampleInterval must not be negative",
			core.ErrInvalidConfig)
	}
	if err := c.FailPolicy.Validate(); err != nil {
		return fmt.Errorf("bench: FailPolicy: %w", err)
	}
	return nil
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

func orDefault[T int | time.Duration](value, fallback T) T {
	if value == 0 {
		return fallback
	}
	return value
}
