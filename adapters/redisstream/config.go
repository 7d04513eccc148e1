package redisstream

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/deadletter/deadletter/core"
)

// Defaults of Config.
const (
	DefaultURL               = "redis://127.0.0.1:6379/0"
	DefaultPrefix            = "events"
	DefaultStreamMaxLen      = 10_000
	DefaultDLQMaxLen         = 5_000
	DefaultReplayedMaxLen    = 10_000
	DefaultBatchSize         = 100
	DefaultMaxInFlight       = 1_000
	DefaultBlock             = 250 * time.Millisecond
	DefaultRetryPollInterval = 100 * time.Millisecond
	DefaultClaimIdle         = time.Minute
	DefaultCloseTimeout      = 30 * time.Second
	DefaultPublishTimeout    = 10 * time.Second
	DefaultPoolSize          = 100
)

// Config configures the Redis Streams adapter. Every field is optional; a
// field left at 0 takes its default, and -1 turns off what the field
// controls where its doc says so.
type Config struct {
	// Client is the Redis client to use. The adapter does not close a
	// client it was given. nil means a client for URL.
	Client redis.UniversalClient

	// URL is the server to connect to when Client is nil, as
	// redis://[user:password@]host:port/db, or rediss:// for TLS. ""
	// means DefaultURL (redis://127.0.0.1:6379/0).
	URL string

	// Prefix starts every key the adapter writes: events go to
	// "<prefix>:<event_type>", dead letters to "<prefix>:dlq". "" means
	// DefaultPrefix ("events"). It must not contain spaces.
	Prefix string

	// StreamMaxLen trims each event stream to about this many entries. 0
	// means DefaultStreamMaxLen (10,000); -1 means no trimming. An entry
	// waiting for a retry survives trimming: the adapter keeps its own copy.
	StreamMaxLen int64

	// DLQMaxLen trims the DLQ to about this many entries, counting every
	// dropped entry. 0 means DefaultDLQMaxLen (5,000); -1 means no cap.
	DLQMaxLen int64

	// ReplayedMaxLen trims the stream of replayed entries to about this many.
	// 0 means DefaultReplayedMaxLen (10,000); -1 means no cap.
	ReplayedMaxLen int64

	// Consumer names this process within each handler's consumer group. ""
	// means the host name, process id and a random suffix.
	Consumer string

	// StartFrom is the position at which a handler's consumer group starts
	// when it is first created: "0" for every event still in the stream, "$" for events
	// published afterwards. "" means "0".
	StartFrom string

	// BatchSize is the number of entries read per round trip. 0 means
	// DefaultBatchSize (100).
	BatchSize int

	// MaxInFlight bounds the messages a subscription has handed out and not
	// yet seen acknowledged. 0 means DefaultMaxInFlight (1,000); 1 handles
	// one event at a time, in stream order.
	MaxInFlight int

	// Block is how long one read waits for new entries; it also bounds how
	// long Close waits for a read in progress. 0 means DefaultBlock (250 ms).
	Block time.Duration

	// RetryPollInterval is how often a subscription looks for retries that
	// have come due, so a retry runs up to this much after its pause. 0
	// means DefaultRetryPollInterval (100 ms).
	RetryPollInterval time.Duration

	// ClaimIdle is how long an entry delivered to another consumer may stay
	// unacknowledged before a live consumer takes it over, as after a crash.
	// Running handlers extend their claim, so a slow handler is not taken
	// over. 0 means DefaultClaimIdle (1 min).
	ClaimIdle time.Duration

	// CloseTimeout bounds how long closing a subscriber waits for handed-out
	// messages to be acknowledged. Unacknowledged ones stay pending and are
	// delivered again. 0 means DefaultCloseTimeout (30 s).
	CloseTimeout time.Duration

	// PublishTimeout bounds how long a publish waits for Redis to store a
	// batch, within the deadline of the first message's context if that
	// is sooner. 0 means DefaultPublishTimeout (10 s).
	PublishTimeout time.Duration

	// Logger receives the adapter's logs. nil means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	c.StreamMaxLen = orDefault(c.StreamMaxLen, DefaultStreamMaxLen)
	c.DLQMaxLen = orDefault(c.DLQMaxLen, DefaultDLQMaxLen)
	c.ReplayedMaxLen = orDefault(c.ReplayedMaxLen, DefaultReplayedMaxLen)
	if c.Consumer == "" {
		host, _ := os.Hostname()
		c.Consumer = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), uuid.NewString()[:8])
	}
	if c.StartFrom == "" {
		c.StartFrom = "0"
	}
	c.BatchSize = orDefault(c.BatchSize, DefaultBatchSize)
	c.MaxInFlight = orDefault(c.MaxInFlight, DefaultMaxInFlight)
	c.Block = orDefault(c.Block, DefaultBlock)
	c.RetryPollInterval = orDefault(c.RetryPollInterval, DefaultRetryPollInterval)
	c.ClaimIdle = orDefault(c.ClaimIdle, DefaultClaimIdle)
	c.CloseTimeout = orDefault(c.CloseTimeout, DefaultCloseTimeout)
	c.PublishTimeout = orDefault(c.PublishTimeout, DefaultPublishTimeout)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports the first field of c that cannot be used.
func (c Config) Validate() error {
	switch {
	case strings.ContainsAny(c.Prefix, " \t\r\n"):
		return fmt.Errorf("%w: redis adapter: Prefix %q must not contain spaces", core.ErrInvalidConfig, c.Prefix)
	case c.Consumer == parkingConsumer:
		return fmt.Errorf("%w: redis adapter: Consumer %q is reserved", core.ErrInvalidConfig, c.Consumer)
	case c.StartFrom != "0" && c.StartFrom != "$":
		return fmt.Errorf("%w: redis adapter: StartFrom is %q; use \"0\" or \"$\"", core.ErrInvalidConfig, c.StartFrom)
	case c.StreamMaxLen < -1 || c.DLQMaxLen < -1 || c.ReplayedMaxLen < -1:
		return fmt.Errorf("%w: redis adapter: stream lengths must be positive, 0 or -1", core.ErrInvalidConfig)
	case c.BatchSize < 1 || c.MaxInFlight < 1:
		return fmt.Errorf("%w: redis adapter: BatchSize and MaxInFlight must be positive", core.ErrInvalidConfig)
	case c.Block < time.Millisecond || c.RetryPollInterval < time.Millisecond:
		return fmt.Errorf("%w: redis adapter: Block and RetryPollInterval must be at least 1ms", core.ErrInvalidConfig)
	case c.ClaimIdle < 10*time.Millisecond || c.CloseTimeout < 0:
		return fmt.Errorf("%w: redis adapter: ClaimIdle must be at least 10ms and CloseTimeout not negative",
			core.ErrInvalidConfig)
	case c.PublishTimeout < 0:
		return fmt.Errorf("%w: redis adapter: PublishTimeout must not be negative", core.ErrInvalidConfig)
	}
	return nil
}

func orDefault[T int | int64 | time.Duration](value, fallback T) T {
	if value == 0 {
		return fallback
	}
	return value
}
