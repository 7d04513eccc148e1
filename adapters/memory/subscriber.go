package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/deadletter/deadletter/core"
)

// Subscriber delivers the events of its topics to one handler. Subscribers
// of the same handler share its events, so each event goes to one of them.
type Subscriber struct {
	broker       *broker
	handler      string
	closeTimeout time.Duration

	mu      sync.Mutex
	closed  bool
	cancels []context.CancelFunc

	// running counts the goroutines that emit messages and watch their
	// acknowledgement. Close waits for them.
	running sync.WaitGroup
}

var _ message.Subscriber = (*Subscriber)(nil)

// Subscribe returns a channel of the topic's events for the subscriber's
// handler, starting with the oldest event the handler has not yet received.
// Messages are emitted without waiting for earlier ones to be acknowledged.
// The channel is closed when ctx is done or the subscriber is closed. Any
// message still unacknowledged then is delivered again to another
// subscriber of the handler.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if !core.ValidEventType(topic) {
		return nil, fmt.Errorf("%w: subscribe handler %q to topic %q: a topic must be an event type",
			core.ErrInvalidConfig, s.handler, topic)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("subscribe handler %q to topic %q: subscriber %w", s.handler, topic, core.ErrClosed)
	}
	g, err := s.broker.group(topic, s.handler)
	if err != nil {
		return nil, err
	}

	ctx, cancel := context.WithCancel(ctx)
	s.cancels = append(s.cancels, cancel)
	out := make(chan *message.Message)
	s.running.Add(1)
	go s.emit(ctx, g, topic, out)
	return out, nil
}

// Close closes the channels returned by Subscribe and waits until they are
// closed. Messages that were emitted but not acknowledged become available
// to the handler's other subscribers.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, cancel := range s.cancels {
		cancel()
	}
	s.mu.Unlock()

	s.running.Wait()
	s.broker.removeSubscriber(s)
	return nil
}

// emit sends the group's deliveries on out until ctx is done, starting a
// watcher for each message so that the next one is sent at once.
func (s *Subscriber) emit(ctx context.Context, g *group, topic string, out chan<- *message.Message) {
	defer s.running.Done()
	defer close(out)

	for {
		d, ok := s.broker.next(ctx, g)
		if !ok {
			return
		}

		// The message's context does not end with the subscription, so
		// that closing lets a running handler finish. watch waits for it
		// up to the close timeout.
		msgCtx, cancelMsg := context.WithCancel(context.WithoutCancel(ctx))
		msg := d.message(msgCtx, topic)
		select {
		case out <- msg:
		case <-ctx.Done():
			cancelMsg()
			s.broker.unsent(g, d)
			return
		}

		// The watcher is counted before emit returns, so Close cannot stop
		// waiting while it runs.
		s.running.Add(1)
		go s.watch(ctx, g, d, msg, cancelMsg)
	}
}

// watch waits for the message's acknowledgement. A nack schedules the next
// delivery. A subscriber that closes first waits up to its close timeout,
// then hands the message back to the group. The message's context ends
// either way.
func (s *Subscriber) watch(ctx context.Context, g *group, d *delivery, msg *message.Message,
	cancelMsg context.CancelFunc) {
	defer s.running.Done()
	defer cancelMsg()

	select {
	case <-msg.Acked():
		return
	case <-msg.Nacked():
		s.broker.nack(g, d, msg.Metadata)
		return
	case <-ctx.Done():
	}

	// A running handler gets up to the close timeout to settle its
	// message. One still running then has its message handed back.
	timer := time.NewTimer(s.closeTimeout)
	defer timer.Stop()
	select {
	case <-msg.Acked():
	case <-msg.Nacked():
		s.broker.nack(g, d, msg.Metadata)
	case <-timer.C:
		s.broker.requeue(g, d, d.state)
	}
}
