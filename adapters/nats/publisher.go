package nats

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/deadletter/deadletter/core"
)

// publishWindow is how many messages of one Publish call are sent before
// the publisher waits for their acknowledgements.
const publishWindow = 512

// Publisher publishes messages to the events stream. Topics are event
// types; each goes to the subject "<prefix>.events.<event_type>".
type Publisher struct {
	adapter *Adapter
	closed  atomic.Bool
}

var _ message.Publisher = (*Publisher)(nil)

// Publish sends msgs without waiting between them and returns once
// JetStream has stored them all. On an error some of them may have been
// stored. The first message's context and PublishTimeout bound
// the wait.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if p.closed.Load() {
		return fmt.Errorf("publish to %q: publisher %w", topic, core.ErrClosed)
	}
	if !core.ValidEventType(topic) {
		return fmt.Errorf("%w: publish: event type %q must be dot-separated words of letters, digits, '_' or '-'",
			core.ErrInvalidEvent, topic)
	}
	if len(msgs) == 0 {
		return nil
	}

	parent := msgs[0].Context()
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithTimeout(parent, p.adapter.cfg.PublishTimeout)
	defer cancel()

	subject := p.adapter.names.eventSubject(topic)
	for start := 0; start < len(msgs); start += publishWindow {
		window := msgs[start:min(start+publishWindow, len(msgs))]
		if err := p.publishWindow(ctx, subject, window); err != nil {
			return fmt.Errorf("publish %d messages to %s: %w", len(msgs), subject, err)
		}
	}
	return nil
}

// publishWindow sends msgs asynchronously, then waits for every
// acknowledgement.
func (p *Publisher) publishWindow(ctx context.Context, subject string, msgs []*message.Message) error {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, msg := range msgs {
		out, err := encodeMessage(subject, msg)
		if err != nil {
			return err
		}
		if err := checkEventSize(out, p.adapter.conn.MaxPayload()); err != nil {
			return fmt.Errorf("publish message %s: %w", msg.UUID, err)
		}
		future, err := p.adapter.js.PublishMsgAsync(out)
		if err != nil {
			return fmt.Errorf("send message %s: %w", msg.UUID, err)
		}
		futures = append(futures, future)
	}

	for i, future := range futures {
		select {
		case <-future.Ok():
		case err := <-future.Err():
			return fmt.Errorf("store message %s: %w", msgs[i].UUID, err)
		case <-ctx.Done():
			return fmt.Errorf("wait for the server to store message %s: %w", msgs[i].UUID, ctx.Err())
		}
	}
	return nil
}

// Close makes later calls to Publish fail. The connection belongs to the
// adapter and stays open.
func (p *Publisher) Close() error {
	p.closed.Store(true)
	return nil
}
