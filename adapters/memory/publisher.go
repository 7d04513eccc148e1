package memory

import (
	"fmt"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/deadletter/deadletter/core"
)

// Publisher appends events to the log of their topic. It is safe for
// concurrent use.
type Publisher struct {
	broker *broker
	closed atomic.Bool
}

var _ message.Publisher = (*Publisher)(nil)

func newPublisher(b *broker) *Publisher {
	return &Publisher{broker: b}
}

// Publish stores copies of the messages on the topic, in order, and returns
// once every handler group can read them. The topic must be a valid event
// type.
func (p *Publisher) Publish(topic string, messages ...*message.Message) error {
	if p.closed.Load() {
		return fmt.Errorf("publish to topic %q: publisher %w", topic, core.ErrClosed)
	}
	if !core.ValidEventType(topic) {
		return fmt.Errorf("%w: publish to topic %q: a topic must be an event type, dot-separated words of letters, digits, '_' or '-'",
			core.ErrInvalidEvent, topic)
	}
	return p.broker.publish(topic, messages)
}

// Close makes further calls to Publish fail. Events already published stay
// with the adapter.
func (p *Publisher) Close() error {
	p.closed.Store(true)
	return nil
}
