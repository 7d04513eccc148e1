package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/logthrottle"
	"github.com/deadletter/deadletter/internal/redact"
)

// setupTimeout bounds connecting and creating the streams when the adapter
// is created.
const setupTimeout = 10 * time.Second

// reconnectWait is the pause between two rounds of reconnect attempts of a
// connection the adapter opened, shorter than the nats.go default of 2 s so
// that handlers resume soon after a server restart. nats.go v1.56 adds up to
// 100 ms of jitter to it.
const reconnectWait = 500 * time.Millisecond

// Adapter connects deadletter to NATS JetStream. It is safe for concurrent
// use.
type Adapter struct {
	cfg      Config
	names    names
	conn     *nats.Conn
	ownsConn bool
	js       jetstream.JetStream

	events     jetstream.Stream
	publisher  *Publisher
	dlq        *DLQ
	retryState *retryState

	mu          sync.Mutex
	subscribers []*Subscriber
	closed      bool

	// failures throttles the log lines of calls that fail for every
	// message in flight, as while the server is unreachable.
	failures logthrottle.Throttle
}

var _ core.Adapter = (*Adapter)(nil)

// NewAdapter validates cfg, connects to NATS and creates the adapter's
// streams, or updates their limits when they exist.
func NewAdapter(cfg Config) (*Adapter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()

	conn, owns := cfg.Conn, false
	if conn == nil {
		var err error
		conn, err = nats.Connect(cfg.URL,
			nats.Name("deadletter"),
			nats.MaxReconnects(-1),
			nats.ReconnectWait(reconnectWait),
			nats.Timeout(setupTimeout),
			nats.DisconnectErrHandler(func(c *nats.Conn, err error) {
				if !c.IsClosed() {
					cfg.Logger.Warn("nats connection lost; reconnecting", slog.Any(core.LogError, err))
				}
			}),
			nats.ReconnectHandler(func(c *nats.Conn) {
				cfg.Logger.Info("nats connection restored", slog.String("server", redact.URL(c.ConnectedUrl())))
			}))
		if err != nil {
			// The URL may hold a password, and nats.go quotes it in the
			// errors of a URL that does not parse.
			return nil, fmt.Errorf("connect to nats at %s: %w", redact.URL(cfg.URL), redact.URLError(err))
		}
		owns = true
	}

	a, err := newAdapter(cfg, conn, owns)
	if err != nil {
		if owns {
			conn.Close()
		}
		return nil, err
	}
	return a, nil
}

func newAdapter(cfg Config, conn *nats.Conn, owns bool) (*Adapter, error) {
	js, err := jetstream.New(conn)
	if err != nil {
		return nil, fmt.Errorf("open jetstream on %s: %w", redact.URL(conn.ConnectedUrl()), err)
	}
	a := &Adapter{cfg: cfg, names: newNames(cfg.Prefix), conn: conn, ownsConn: owns, js: js}
	if version := conn.ConnectedServerVersion(); !serverAtLeast(version, 2, 10) {
		cfg.Logger.Warn("nats server is older than 2.10; a retry due while a subscriber closes can restart "+
			"the event's delivery count, giving it more attempts than its policy",
			slog.String("server_version", version))
	}

	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()

	a.events, err = a.ensureStream(ctx, jetstream.StreamConfig{
		Name:              a.names.eventsStream,
		Description:       "deadletter events, one subject per event type",
		Subjects:          []string{a.names.eventsSubjectPrefix + ">"},
		MaxMsgsPerSubject: cfg.MaxEventsPerType,
		Duplicates:        replayDedupWindow,
	})
	if err != nil {
		return nil, err
	}

	retryStream, err := a.ensureStream(ctx, jetstream.StreamConfig{
		Name:              a.names.retryStream,
		Description:       "deadletter outcome of each event's last failed attempt, per handler",
		Subjects:          []string{a.names.retrySubjectPrefix + ">"},
		MaxMsgsPerSubject: 1,
		MaxAge:            max(cfg.RetryStateMaxAge, 0),
		AllowDirect:       true,
	})
	if err != nil {
		return nil, err
	}
	a.retryState = &retryState{js: js, stream: retryStream, subjectPrefix: a.names.retrySubjectPrefix}

	if a.dlq, err = a.newDLQ(ctx); err != nil {
		return nil, err
	}
	a.publisher = &Publisher{adapter: a}
	return a, nil
}

// ensureStream creates the stream of want, or checks that the existing one
// has the same subjects and updates its limits to want's.
func (a *Adapter) ensureStream(ctx context.Context, want jetstream.StreamConfig) (jetstream.Stream, error) {
	want.Retention = jetstream.LimitsPolicy
	want.Discard = jetstream.DiscardOld
	want.Replicas = a.cfg.Replicas
	want.Storage = jetstream.FileStorage
	if a.cfg.MemoryStorage {
		want.Storage = jetstream.MemoryStorage
	}
	for _, limit := range []*int64{&want.MaxMsgs, &want.MaxBytes, &want.MaxMsgsPerSubject} {
		if *limit == 0 {
			*limit = -1
		}
	}

	stream, err := a.js.CreateStream(ctx, want)
	if err == nil {
		return stream, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return nil, fmt.Errorf("create stream %s: %w", want.Name, err)
	}

	stream, err = a.js.Stream(ctx, want.Name)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", want.Name, err)
	}
	have := stream.CachedInfo().Config
	if !slices.Equal(have.Subjects, want.Subjects) {
		return nil, fmt.Errorf("%w: stream %s has subjects %v, expected %v; use another Prefix",
			ErrNameConflict, want.Name, have.Subjects, want.Subjects)
	}
	sameWindow := want.Duplicates == 0 || have.Duplicates == want.Duplicates
	if have.MaxMsgs == want.MaxMsgs && have.MaxMsgsPerSubject == want.MaxMsgsPerSubject &&
		have.MaxAge == want.MaxAge && have.Discard == want.Discard && sameWindow {
		return stream, nil
	}

	// Storage and replicas stay as created; only the limits follow the
	// configuration.
	updated := have
	updated.MaxMsgs, updated.MaxMsgsPerSubject = want.MaxMsgs, want.MaxMsgsPerSubject
	updated.MaxAge, updated.Discard = want.MaxAge, want.Discard
	if want.Duplicates != 0 {
		updated.Duplicates = want.Duplicates
	}
	stream, err = a.js.UpdateStream(ctx, updated)
	if err != nil {
		return nil, fmt.Errorf("update limits of stream %s: %w", want.Name, err)
	}
	return stream, nil
}

// serverAtLeast reports whether a server version such as "2.9.10" is at
// least major.minor. It returns true for a version it cannot parse.
func serverAtLeast(version string, major, minor int) bool {
	var haveMajor, haveMinor int
	if _, err := fmt.Sscanf(version, "%d.%d", &haveMajor, &haveMinor); err != nil {
		return true
	}
	return haveMajor > major || haveMajor == major && haveMinor >= minor
}

// Name returns "nats".
func (a *Adapter) Name() string { return "nats" }

// Publisher returns the adapter's publisher.
func (a *Adapter) Publisher() message.Publisher { return a.publisher }

// Subscriber returns a subscriber for one handler. Each event type it
// subscribes to gets a durable consumer named after the handler and the
// event type, shared by every subscriber of that handler.
func (a *Adapter) Subscriber(handler string) (message.Subscriber, error) {
	if !handlerPattern.MatchString(handler) {
		return nil, fmt.Errorf("%w: nats adapter: handler name %q must be 1 to 128 letters, digits, '_' or '-'",
			core.ErrInvalidConfig, handler)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, fmt.Errorf("create subscriber for handler %q: adapter %w", handler, core.ErrClosed)
	}
	s := newSubscriber(a, handler)
	a.subscribers = append(a.subscribers, s)
	return s, nil
}

// DLQ returns the adapter's dead letter queue.
func (a *Adapter) DLQ() core.DLQ { return a.dlq }

// Capabilities returns every capability: JetStream redelivers nacked
// messages after a delay and counts deliveries, consumers are durable and
// shared, and the outcome of failed attempts is kept in a stream of its own.
func (a *Adapter) Capabilities() core.Capabilities {
	return core.Capabilities{
		Redelivery:         true,
		Durable:            true,
		CompetingConsumers: true,
		RetryState:         true,
	}
}

// Close closes the subscribers that are still open and the publisher, then
// the connection if the adapter opened it. Acknowledgements already sent are
// flushed to the server first. A second Close returns nil.
func (a *Adapter) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	subscribers := a.subscribers
	a.subscribers = nil
	a.mu.Unlock()

	var errs []error
	for _, s := range subscribers {
		errs = append(errs, s.Close())
	}
	errs = append(errs, a.publisher.Close())

	if a.ownsConn {
		// Drain flushes pending acknowledgements and publishes before the
		// connection closes.
		closed := make(chan struct{})
		a.conn.SetClosedHandler(func(*nats.Conn) { close(closed) })
		if err := a.conn.Drain(); err != nil {
			a.conn.Close()
		} else {
			select {
			case <-closed:
			case <-time.After(a.cfg.CloseTimeout):
				a.conn.Close()
			}
		}
	} else if err := a.conn.FlushTimeout(setupTimeout); err != nil && !a.conn.IsClosed() {
		errs = append(errs, fmt.Errorf("flush nats connection: %w", err))
	}
	return errors.Join(errs...)
}

// forget removes a closed subscriber from the adapter's list.
func (a *Adapter) forget(s *Subscriber) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.subscribers = slices.DeleteFunc(a.subscribers, func(other *Subscriber) bool { return other == s })
}
