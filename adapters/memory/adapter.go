package memory

import (
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/deadletter/deadletter/core"
)

// Adapter is an in-memory broker. It implements core.Adapter and is safe for
// concurrent use.
type Adapter struct {
	broker    *broker
	publisher *Publisher
	dlq       *DLQ

	closeTimeout time.Duration
}

var _ core.Adapter = (*Adapter)(nil)

// New validates cfg, fills its defaults and returns an empty broker.
func New(cfg Config) (*Adapter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()

	b := newBroker(cfg.StreamMaxLen)
	dlq := newDLQ(cfg.DLQMaxLen)
	dlq.broker = b
	return &Adapter{
		broker:    b,
		publisher: newPublisher(b),
		dlq:       dlq,

		closeTimeout: cfg.CloseTimeout,
	}, nil
}

// Name returns "memory".
func (a *Adapter) Name() string { return "memory" }

// Publisher returns the adapter's publisher. Closing it stops only that
// publisher.
func (a *Adapter) Publisher() message.Publisher { return a.publisher }

// Subscriber returns a new subscriber for the named handler.
func (a *Adapter) Subscriber(handler string) (message.Subscriber, error) {
	if handler == "" {
		return nil, fmt.Errorf("%w: memory adapter: handler name is missing", core.ErrInvalidConfig)
	}
	s := &Subscriber{broker: a.broker, handler: handler, closeTimeout: a.closeTimeout}
	if err := a.broker.addSubscriber(s); err != nil {
		return nil, err
	}
	return s, nil
}

// DLQ returns the adapter's dead letter queue, a *DLQ.
func (a *Adapter) DLQ() core.DLQ { return a.dlq }

// Capabilities declares redelivery with retry state and competing
// consumers. Nothing outlives the Adapter value, so it is not durable.
func (a *Adapter) Capabilities() core.Capabilities {
	return core.Capabilities{
		Redelivery:         true,
		CompetingConsumers: true,
		RetryState:         true,
		Durable:            false,
	}
}

// Close closes the subscribers still open, stops pending retries and makes
// publishing fail. The DLQ stays readable.
func (a *Adapter) Close() error {
	for _, s := range a.broker.close() {
		if err := s.Close(); err != nil {
			return fmt.Errorf("close memory adapter: %w", err)
		}
	}
	return nil
}
