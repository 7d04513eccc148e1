package deadletter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/middleware"
)

// DefaultCloseTimeout is how long Close waits for running handlers.
const DefaultCloseTimeout = 30 * time.Second

// Config configures a Bus.
type Config struct {
	// Adapter connects the bus to its broker. Required. The bus does not
	// close it.
	Adapter core.Adapter

	// Policy is the retry policy of handlers registered without one. The
	// zero value is the default: 3 retries after 2 s, 4 s and 8 s.
	Policy core.Policy

	// DLQ overrides the adapter's dead letter queue. nil means
	// Adapter.DLQ().
	DLQ core.DLQ

	// DLQRetryPause is the pause before an event whose DLQ write failed is
	// delivered again. 0 means middleware.DefaultDLQRetryPause (5 s).
	DLQRetryPause time.Duration

	// CrashAllowance is how many deliveries past a handler's attempts an
	// event may have, none ended by the handler, before it is dead-lettered
	// as crashing the process. 0 means middleware.DefaultCrashAllowance (2);
	// -1 means none.
	CrashAllowance int

	// CloseTimeout bounds how long Close waits for running handlers. 0
	// means DefaultCloseTimeout (30 s).
	CloseTimeout time.Duration

	// Logger receives structured logs. nil means slog.Default(). Watermill's
	// own informational lines are logged at debug level.
	Logger *slog.Logger

	// HandlerMiddleware wraps every handler inside the retry middleware, so
	// that each runs once per attempt, in the order given; metrics.Middleware
	// is one. nil means none.
	HandlerMiddleware []message.HandlerMiddleware
}

// HandlerFunc handles one event. Returning an error schedules a retry,
// unless the error is marked with core.Permanent (dead-lettered at once),
// core.RetryAfter (retried after the given pause) or core.Skip (not a
// failure).
type HandlerFunc func(ctx context.Context, ev core.Event) error

// Bus publishes events and runs handlers for them with retries and a DLQ.
type Bus struct {
	cfg    Config
	dlq    core.DLQ
	router *message.Router

	mu       sync.Mutex
	handlers map[string]bool
	started  bool
	closed   bool
}

// handlerNamePattern keeps handler names valid as Redis consumer group
// names and NATS durable consumer names alike.
var handlerNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// New validates cfg and returns a bus that is ready for handlers.
func New(cfg Config) (*Bus, error) {
	if cfg.Adapter == nil {
		return nil, fmt.Errorf("%w: bus: Adapter is missing", core.ErrInvalidConfig)
	}
	if err := cfg.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("bus: default policy: %w", err)
	}
	if cfg.CloseTimeout < 0 || cfg.DLQRetryPause < 0 {
		return nil, fmt.Errorf("%w: bus: CloseTimeout and DLQRetryPause must not be negative",
			core.ErrInvalidConfig)
	}
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = DefaultCloseTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}

	dlq := cfg.DLQ
	if dlq == nil {
		dlq = cfg.Adapter.DLQ()
	}

	logger := watermill.NewSlogLoggerWithLevelMapping(cfg.Logger, map[slog.Level]slog.Level{
		slog.LevelInfo: slog.LevelDebug,
	})
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.CloseTimeout}, logger)
	if err != nil {
		return nil, fmt.Errorf("bus: create router: %w", err)
	}

	return &Bus{cfg: cfg, dlq: dlq, router: router, handlers: map[string]bool{}}, nil
}

// HandlerOption sets an option of one handler.
type HandlerOption func(*handlerOptions) error

type handlerOptions struct {
	policy core.Policy
}

// WithPolicy gives a handler its own retry policy instead of the bus's.
func WithPolicy(p core.Policy) HandlerOption {
	return func(o *handlerOptions) error {
		if err := p.Validate(); err != nil {
			return err
		}
		o.policy = p
		return nil
	}
}

// Handle registers fn under a unique name for events of one type. The name
// identifies the handler on the broker and in DLQ entries, so it must stay
// the same across deployments. Handle must be called before Run.
func (b *Bus) Handle(name, eventType string, fn HandlerFunc, opts ...HandlerOption) error {
	if err := b.checkHandler(name, eventType, fn); err != nil {
		return err
	}

	options := handlerOptions{policy: b.cfg.Policy}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&options); err != nil {
			return fmt.Errorf("add handler %q: %w", name, err)
		}
	}

	retry, err := middleware.NewRetry(middleware.RetryConfig{
		Handler:        name,
		Policy:         options.policy,
		DLQ:            b.dlq,
		DLQRetryPause:  b.cfg.DLQRetryPause,
		CrashAllowance: b.cfg.CrashAllowance,
		Logger:         b.cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("add handler %q: %w", name, err)
	}
	subscriber, err := b.cfg.Adapter.Subscriber(name)
	if err != nil {
		return fmt.Errorf("add handler %q: create subscriber: %w", name, err)
	}

	h := b.router.AddConsumerHandler(name, eventType, subscriber, adapt(fn))
	h.AddMiddleware(retry.Middleware)
	h.AddMiddleware(b.cfg.HandlerMiddleware...)
	return nil
}

func (b *Bus) checkHandler(name, eventType string, fn HandlerFunc) error {
	switch {
	case !handlerNamePattern.MatchString(name):
		return fmt.Errorf("%w: handler name %q must be 1 to 128 letters, digits, '_' or '-'",
			core.ErrInvalidConfig, name)
	case !core.ValidEventType(eventType):
		return fmt.Errorf("%w: handler %q: event type %q must be dot-separated words of letters, digits, '_' or '-'",
			core.ErrInvalidConfig, name, eventType)
	case fn == nil:
		return fmt.Errorf("%w: handler %q: function is nil", core.ErrInvalidConfig, name)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return fmt.Errorf("add handler %q: bus %w", name, core.ErrClosed)
	case b.started:
		return fmt.Errorf("%w: add handler %q: the bus is already running; add handlers before Run",
			core.ErrInvalidConfig, name)
	case b.handlers[name]:
		return fmt.Errorf("%w: handler name %q is already registered", core.ErrInvalidConfig, name)
	}
	b.handlers[name] = true
	return nil
}

// adapt turns fn into a Watermill handler. It reads the event that Retry
// decoded, and decodes the payload itself only when used without Retry.
func adapt(fn HandlerFunc) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		ev, ok := middleware.EventFromContext(msg.Context())
		if !ok {
			var err error
			if ev, err = core.DecodeEvent(msg.Payload); err != nil {
				return core.Permanent(err)
			}
		}
		return fn(msg.Context(), ev)
	}
}

// Publish validates the events and publishes them, each on its event type's
// stream. It returns only once the broker has stored them all, or an error.
func (b *Bus) Publish(ctx context.Context, events ...core.Event) error {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return fmt.Errorf("publish: bus %w", core.ErrClosed)
	}

	byType := map[string][]*message.Message{}
	var order []string
	for _, ev := range events {
		payload, err := ev.Marshal()
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}

		msg := message.NewMessage(ev.EventID, payload)
		msg.SetContext(ctx)
		if _, seen := byType[ev.EventType]; !seen {
			order = append(order, ev.EventType)
		}
		byType[ev.EventType] = append(byType[ev.EventType], msg)
	}

	for _, eventType := range order {
		if err := b.cfg.Adapter.Publisher().Publish(eventType, byType[eventType]...); err != nil {
			return fmt.Errorf("publish %d events of type %q: %w", len(byType[eventType]), eventType, err)
		}
	}
	return nil
}

// Run runs the handlers until ctx is cancelled or Close is called, then
// waits for running handlers up to the close timeout.
func (b *Bus) Run(ctx context.Context) error {
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		return fmt.Errorf("run bus: %w", core.ErrClosed)
	case b.started:
		b.mu.Unlock()
		return fmt.Errorf("%w: run bus: it has run already; create a new bus", core.ErrInvalidConfig)
	case len(b.handlers) == 0:
		b.mu.Unlock()
		return fmt.Errorf("%w: run bus: no handlers registered; call Handle first", core.ErrInvalidConfig)
	}
	b.started = true
	b.mu.Unlock()

	// The router stops when ctx ends only through its handlers; closing it
	// here as well makes Run return promptly in every case. Closing waits
	// until the router runs, because a router closed while it starts its
	// handlers waits out the whole close timeout.
	runDone := make(chan struct{})
	defer close(runDone)
	stop := context.AfterFunc(ctx, func() {
		select {
		case <-b.router.Running():
			_ = b.Close()
		case <-runDone:
		}
	})
	defer stop()

	if err := b.router.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("run bus: %w", err)
	}
	return nil
}

// Running returns a channel that is closed once every handler has
// subscribed.
func (b *Bus) Running() <-chan struct{} { return b.router.Running() }

// DLQ returns the dead letter queue the bus writes to.
func (b *Bus) DLQ() core.DLQ { return b.dlq }

// Router returns the Watermill router under the bus, for adding router-level
// middleware or plugins before Run.
func (b *Bus) Router() *message.Router { return b.router }

// Close stops the handlers, waiting for running ones up to the close
// timeout. It does not close the adapter.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	started := b.started
	b.mu.Unlock()

	// A router that never ran has nothing to stop, and closing it would
	// wait out the close timeout.
	if !started {
		return nil
	}
	if err := b.router.Close(); err != nil {
		return fmt.Errorf("close bus: %w", err)
	}
	return nil
}
