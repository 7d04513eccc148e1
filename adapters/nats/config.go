package nats

import (
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/deadletter/deadletter/core"
)

// Defaults of Config.
const (
	DefaultURL              = nats.DefaultURL
	DefaultPrefix           = "deadletter"
	DefaultMaxEventsPerType = 10_000
	DefaultDLQMaxLen        = 5_000
	DefaultReplayedMaxLen   = 10_000
	DefaultRetryStateMaxAge = 7 * 24 * time.Hour
	DefaultAckWait          = 30 * time.Second
	DefaultBatchSize        = 100
	DefaultMaxInFlight      = 1_000
	DefaultPublishTimeout   = 10 * time.Second
	DefaultCloseTimeout     = 30 * time.Second
)

// minAckWait keeps the in-progress signal, sent every third of AckWait, from
// flooding the server.
const minAckWait = 100 * time.Millisecond

// prefixPattern keeps the prefix one subject token that is also valid in
// stream names.
var prefixPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Config configures the NATS JetStream adapter. Every field is optional; a
// field left at 0 takes its default, and -1 turns off what the field
// controls where its doc says so.
type Config struct {
	// Conn is the connection to use. The adapter does not close a
	// connection it was given. nil means a connection to URL.
	Conn *nats.Conn

	// URL is the server to connect to when Conn is nil, such as
	// nats://127.0.0.1:4222, or several separated by commas. "" means
	// DefaultURL (nats://127.0.0.1:4222).
	URL string

	// Prefix starts every subject the adapter uses and, upper-cased, every
	// stream name: events go to "<prefix>.events.<event_type>" in the
	// stream "<PREFIX>_EVENTS". "" means DefaultPrefix ("deadletter"). It
	// is 1 to 64 letters, digits, '_' or '-'. Prefixes that differ only in
	// case share stream names, so NewAdapter rejects the second one.
	Prefix string

	// MaxEventsPerType caps how many events of one type the events stream
	// keeps, dropping the oldest. An event dropped while it waits for a
	// retry is not retried. Within about AckWait a subscriber of the
	// handler writes it to the DLQ with error type "trimmed", from the copy
	// kept with its retry state. 0 means DefaultMaxEventsPerType (10,000);
	// -1 means no cap.
	MaxEventsPerType int64

	// DLQMaxLen caps the DLQ stream; at the cap each new entry drops the
	// oldest one, and DLQ.Dropped counts it. 0 means DefaultDLQMaxLen
	// (5,000); -1 means no cap.
	DLQMaxLen int64

	// ReplayedMaxLen caps the stream of replayed entries, dropping the
	// oldest. 0 means DefaultReplayedMaxLen (10,000); -1 means no cap.
	ReplayedMaxLen int64

	// RetryStateMaxAge is how long the outcome of a failed attempt is kept
	// for the next delivery. An event retried later than this loses its
	// last error and first failure time, but not its delivery count. 0
	// means DefaultRetryStateMaxAge (7 days); -1 means no limit.
	RetryStateMaxAge time.Duration

	// MemoryStorage keeps the adapter's streams in server memory instead of
	// on disk, so they do not survive a server restart. It only applies
	// when a stream is created.
	MemoryStorage bool

	// Replicas is the number of copies of each stream in a cluster. 0 means
	// 1. It only applies when a stream is created.
	Replicas int

	// AckWait is how long JetStream waits for an acknowledgement before it
	// delivers a message again. A running handler keeps its message by
	// sending an in-progress signal every third of AckWait, so AckWait
	// matters only when a process dies mid-handler. 0 means DefaultAckWait
	// (30 s); it must be at least 100 ms.
	AckWait time.Duration

	// MaxAckPending caps the messages a handler's consumer has delivered
	// and not yet seen acknowledged, across all its processes. Messages
	// waiting for a retry count against it, so a low cap lets failing
	// events stall a handler. 0 and -1 mean no cap (the default).
	MaxAckPending int

	// BatchSize is the number of messages one pull request fetches, at
	// most MaxInFlight. The client buffers them until the subscription
	// hands them out. 0 means DefaultBatchSize (100).
	BatchSize int

	// MaxInFlight bounds the messages a subscription has handed out and not
	// yet seen acknowledged. 0 means DefaultMaxInFlight (1,000); 1 handles
	// one event at a time.
	MaxInFlight int

	// StartAtNew makes a handler's consumer, when it is first created,
	// start with the events published afterwards. By default it starts
	// with every event still in the stream.
	StartAtNew bool

	// PublishTimeout bounds how long a publish waits for the server to
	// store a batch of messages. 0 means DefaultPublishTimeout (10 s).
	PublishTimeout time.Duration

	// CloseTimeout bounds how long closing a subscriber waits for handed-out
	// messages to be acknowledged. Messages still unacknowledged then are
	// delivered again after AckWait. 0 means DefaultCloseTimeout (30 s).
	CloseTimeout time.Duration

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
	c.MaxEventsPerType = orDefault(c.MaxEventsPerType, DefaultMaxEventsPerType)
	c.DLQMaxLen = orDefault(c.DLQMaxLen, DefaultDLQMaxLen)
	c.ReplayedMaxLen = orDefault(c.ReplayedMaxLen, DefaultReplayedMaxLen)
	c.RetryStateMaxAge = orDefault(c.RetryStateMaxAge, DefaultRetryStateMaxAge)
	c.Replicas = orDefault(c.Replicas, 1)
	c.AckWait = orDefault(c.AckWait, DefaultAckWait)
	if c.MaxAckPending == 0 {
		c.MaxAckPending = -1
	}
	c.BatchSize = orDefault(c.BatchSize, DefaultBatchSize)
	c.MaxInFlight = orDefault(c.MaxInFlight, DefaultMaxInFlight)
	c.PublishTimeout = orDefault(c.PublishTimeout, DefaultPublishTimeout)
	c.CloseTimeout = orDefault(c.CloseTimeout, DefaultCloseTimeout)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports the first field of c that cannot be used. It accepts
// both filled and zero fields.
func (c Config) Validate() error {
	switch {
	case c.Prefix != "" && !prefixPattern.MatchString(c.Prefix):
		return fmt.Errorf("%w: nats adapter: Prefix %q must be 1 to 64 letters, digits, '_' or '-'",
			core.ErrInvalidConfig, c.Prefix)
	case c.MaxEventsPerType < -1 || c.DLQMaxLen < -1 || c.ReplayedMaxLen < -1:
		return fmt.Errorf("%w: nats adapter: MaxEventsPerType, DLQMaxLen and ReplayedMaxLen must be positive, 0 or -1",
			core.ErrInvalidConfig)
	case c.RetryStateMaxAge < -1:
		return fmt.Errorf("%w: nats adapter: RetryStateMaxAge must be positive, 0 or -1", core.ErrInvalidConfig)
	case c.Replicas < 0 || c.MaxAckPending < -1:
		return fmt.Errorf("%w: nats adapter: Replicas must not be negative and MaxAckPending must be positive, 0 or -1",
			core.ErrInvalidConfig)
	case c.AckWait != 0 && c.AckWait < minAckWait:
		return fmt.Errorf("%w: nats adapter: AckWait is %s; it must be at least %s",
			core.ErrInvalidConfig, c.AckWait, minAckWait)
	case c.BatchSize < 0 || c.MaxInFlight < 0:
		return fmt.Errorf("%w: nats adapter: BatchSize and MaxInFlight must not be negative", core.ErrInvalidConfig)
	case c.PublishTimeout < 0 || c.CloseTimeout < 0:
		return fmt.Errorf("%w: nats adapter: PublishTimeout and CloseTimeout must not be negative",
			core.ErrInvalidConfig)
	}
	return nil
}

// names are the subjects and streams of one prefix.
type names struct {
	eventsSubjectPrefix string // "<prefix>.events."
	eventsStream        string
	dlqSubject          string
	dlqStream           string
	replayedSubject     string // "<prefix>.dlq.replayed.", followed by the DLQ id
	replayedStream      string
	retrySubjectPrefix  string // "<prefix>.retry."
	retryStream         string
	countersBucket      string
}

func newNames(prefix string) names {
	upper := strings.ToUpper(prefix)
	return names{
		eventsSubjectPrefix: prefix + ".events.",
		eventsStream:        upper + "_EVENTS",
		dlqSubject:          prefix + ".dlq",
		dlqStream:           upper + "_DLQ",
		replayedSubject:     prefix + ".dlq.replayed.",
		replayedStream:      upper + "_DLQ_REPLAYED",
		retrySubjectPrefix:  prefix + ".retry.",
		retryStream:         upper + "_RETRY_STATE",
		countersBucket:      upper + "_DLQ_COUNTERS",
	}
}

// eventSubject returns the subject of an event type.
func (n names) eventSubject(eventType string) string {
	return n.eventsSubjectPrefix + eventType
}

func orDefault[T int | int64 | time.Duration](value, fallback T) T {
	if value == 0 {
		return fallback
	}
	return value
}
