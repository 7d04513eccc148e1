package redisstream

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/logthrottle"
	"github.com/deadletter/deadletter/internal/redact"
)

// connectTimeout bounds the PING that checks the server when the adapter is
// created.
const connectTimeout = 5 * time.Second

// Adapter connects deadletter to Redis Streams. It is safe for concurrent
// use.
type Adapter struct {
	cfg        Config
	client     redis.UniversalClient
	ownsClient bool
	publisher  *Publisher
	dlq        *DLQ
	closed     atomic.Bool

	// failures throttles the log lines of calls that fail while Redis is
	// unreachable, across all subscriptions.
	failures logthrottle.Throttle
}

var _ core.Adapter = (*Adapter)(nil)

// NewAdapter validates cfg, connects to Redis and checks the connection with a
// PING.
func NewAdapter(cfg Config) (*Adapter, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}

	client, owns := cfg.Client, false
	if client == nil {
		opts, err := redis.ParseURL(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("%w: redis adapter: %s", core.ErrInvalidConfig, redactedParseError(cfg.URL, err))
		}
		// Every running subscription holds a connection while it waits for
		// new entries, so the pool must be larger than the handler count.
		if opts.PoolSize < DefaultPoolSize {
			opts.PoolSize = DefaultPoolSize
		}
		// Without it, go-redis ignores a context's deadline while it waits
		// for a reply, so a call to a server that hangs takes the 5 s read
		// timeout of go-redis v9.23 per try, whatever the caller's deadline.
		opts.ContextTimeoutEnabled = true
		client, owns = redis.NewClient(opts), true
	}

	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		if owns {
			_ = client.Close()
		}
		return nil, fmt.Errorf("connect to redis at %s: %w", serverAddr(client), err)
	}

	a := &Adapter{cfg: cfg, client: client, ownsClient: owns}
	a.publisher = &Publisher{adapter: a}
	a.dlq = &DLQ{
		client:         client,
		prefix:         cfg.Prefix,
		stream:         cfg.Prefix + ":dlq",
		replayed:       cfg.Prefix + ":dlq:replayed",
		movedIDs:       cfg.Prefix + ":dlq:replayed-ids",
		dropped:        cfg.Prefix + ":dlq:dropped",
		maxLen:         cfg.DLQMaxLen,
		replayedMaxLen: cfg.ReplayedMaxLen,
	}
	return a, nil
}

// Name returns "redis".
func (a *Adapter) Name() string { return "redis" }

// Publisher returns the adapter's publisher.
func (a *Adapter) Publisher() message.Publisher { return a.publisher }

// Subscriber returns a subscriber for one handler; the handler's name is its
// consumer group on every event stream it subscribes to.
func (a *Adapter) Subscriber(handler string) (message.Subscriber, error) {
	if handler == "" {
		return nil, fmt.Errorf("%w: redis subscriber: handler name is missing", core.ErrInvalidConfig)
	}
	return newSubscriber(a, handler), nil
}

// DLQ returns the dead letter queue on "<prefix>:dlq".
func (a *Adapter) DLQ() core.DLQ { return a.dlq }

// Client returns the Redis client the adapter uses.
func (a *Adapter) Client() redis.UniversalClient { return a.client }

// Capabilities declares every optional guarantee: Redis keeps delivery
// counts, retry schedules and their state, so they survive a restart.
func (a *Adapter) Capabilities() core.Capabilities {
	return core.Capabilities{Redelivery: true, Durable: true, CompetingConsumers: true, RetryState: true}
}

// Close closes the Redis client if the adapter created it. Closing twice
// is safe.
func (a *Adapter) Close() error {
	if !a.ownsClient || a.closed.Swap(true) {
		return nil
	}
	if err := a.client.Close(); err != nil {
		return fmt.Errorf("close redis client: %w", err)
	}
	return nil
}

// StreamName returns the stream that holds events of eventType.
func (a *Adapter) StreamName(eventType string) string {
	return a.cfg.Prefix + ":" + eventType
}

// handlerKeys are the keys one handler uses on one event stream.
type handlerKeys struct {
	stream string
	group  string
	// retries is a sorted set of entry ids scored by the Unix time in ms at
	// which each is due for its next attempt.
	retries string
	// state is a hash with, per entry waiting for or running a retry,
	// "d:<id>" holding the message and "n:<id>" its delivery count.
	state string
	// trimmed is a hash with the count of events trimmed before the group
	// read them, and the stream state at the check that counted them.
	trimmed string
}

func (a *Adapter) keys(eventType, handler string) (handlerKeys, error) {
	if !core.ValidEventType(eventType) {
		return handlerKeys{}, fmt.Errorf("%w: topic %q is not a valid event type", core.ErrInvalidEvent, eventType)
	}
	if eventType == "dlq" {
		return handlerKeys{}, fmt.Errorf("%w: %q", ErrReservedEventType, eventType)
	}
	stream := a.StreamName(eventType)
	retries, state := retryKeys(stream, handler)
	return handlerKeys{
		stream: stream, group: handler, retries: retries, state: state,
		trimmed: stream + ":trimmed-unread:" + handler,
	}, nil
}

// retryKeys returns the retry schedule and retry state keys of one handler
// on one stream.
func retryKeys(stream, handler string) (retries, state string) {
	return stream + ":retries:" + handler, stream + ":retry-state:" + handler
}

func serverAddr(client redis.UniversalClient) string {
	if c, ok := client.(*redis.Client); ok {
		return c.Options().Addr
	}
	return "the configured server"
}

// redactedParseError describes why raw is not a valid Redis URL, without
// its password. Errors of net/url quote the URL, or the part that failed, which
// may be the password, so only the form is given for them. go-redis's own
// errors quote the scheme, path or query, which are shown only when
// redact.URL shows them too.
func redactedParseError(raw string, err error) string {
	const form = "expected redis://[user:password@]host:port/db or rediss://... for TLS"
	redacted := redact.URL(raw)
	var urlErr *url.Error
	if errors.As(err, &urlErr) || redacted == redact.Placeholder {
		return "URL: not a valid URL (not shown, since it may hold a password); " + form
	}
	return fmt.Sprintf("URL %s: %v; %s", redacted, err, form)
}
