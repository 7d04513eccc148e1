package nats

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/deadletter/deadletter/core"
)

// handlerPattern matches the handler names that the bus accepts. Each is
// also a valid consumer name and subject token.
var handlerPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// maxConsumerName is the longest consumer name the server accepts.
const maxConsumerName = 255

// resubscribePause is the pause before a subscription creates its consumer
// and pull subscription again after the server ended them.
const resubscribePause = time.Second

// consumerName returns the durable consumer of a handler for one event
// type: "<handler>@<event type with '~' for '.'>", such as
// "send_welcome_email@patient~registered". Consumer names cannot contain
// dots, and '~' is in neither handler names nor event types, so the name is
// unambiguous. A name over 255 bytes is cut and ends with a hash of the
// event type instead.
func consumerName(handler, eventType string) string {
	name := handler + "@" + strings.ReplaceAll(eventType, ".", "~")
	if len(name) <= maxConsumerName {
		return name
	}
	h := fnv.New64a()
	h.Write([]byte(eventType))
	suffix := fmt.Sprintf("~%016x", h.Sum64())
	return name[:maxConsumerName-len(suffix)] + suffix
}

// Subscriber delivers the events of one handler. Every subscriber of the
// same handler, in this process or another, pulls from the same durable
// consumers, so each event is handled once per handler.
type Subscriber struct {
	adapter *Adapter
	handler string
	log     *slog.Logger

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	running sync.WaitGroup
}

var (
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
)

func newSubscriber(a *Adapter, handler string) *Subscriber {
	return &Subscriber{
		adapter: a,
		handler: handler,
		log:     a.cfg.Logger.With(slog.String(core.LogHandler, handler)),
		closing: make(chan struct{}),
	}
}

// Subscribe creates the handler's consumer for the event type topic if it
// does not exist and returns its messages. The channel is closed when ctx
// ends or the subscriber is closed, once the handed-out messages are
// acknowledged or CloseTimeout has passed.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("subscribe handler %q to %q: subscriber %w", s.handler, topic, core.ErrClosed)
	}
	s.running.Add(1)
	s.mu.Unlock()

	sub, err := s.newSubscription(ctx, topic)
	if err != nil {
		s.running.Done()
		return nil, err
	}
	go func() {
		defer s.running.Done()
		sub.run()
	}()
	return sub.out, nil
}

// SubscribeInitialize creates the handler's consumer for the event type
// topic without consuming from it.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	_, err := s.ensureConsumer(ctx, topic)
	return err
}

// Close stops every subscription, waits for their handed-out messages as
// Subscribe describes, and closes their channels. A second Close returns
// nil.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()

	s.running.Wait()
	s.adapter.forget(s)
	return nil
}

// ensureConsumer returns the handler's durable consumer for eventType,
// creating it when missing and updating its AckWait and MaxAckPending when
// they differ from the configuration.
func (s *Subscriber) ensureConsumer(ctx context.Context, eventType string) (jetstream.Consumer, error) {
	if !core.ValidEventType(eventType) {
		return nil, fmt.Errorf("%w: subscribe handler %q: event type %q must be dot-separated words of letters, digits, '_' or '-'",
			core.ErrInvalidConfig, s.handler, eventType)
	}
	a := s.adapter
	want := jetstream.ConsumerConfig{
		Durable:       consumerName(s.handler, eventType),
		Description:   fmt.Sprintf("deadletter handler %s of event type %s", s.handler, eventType),
		FilterSubject: a.names.eventSubject(eventType),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       a.cfg.AckWait,
		// The retry middleware dead-letters an event by its delivery
		// count, so JetStream must never stop delivering it on its own.
		MaxDeliver:    -1,
		MaxAckPending: a.cfg.MaxAckPending,
	}
	if a.cfg.StartAtNew {
		want.DeliverPolicy = jetstream.DeliverNewPolicy
	}

	consumer, err := a.events.Consumer(ctx, want.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		consumer, err = a.events.CreateConsumer(ctx, want)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			consumer, err = a.events.Consumer(ctx, want.Durable)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on stream %s: %w", want.Durable, a.names.eventsStream, err)
	}

	have := consumer.CachedInfo().Config
	if have.FilterSubject != want.FilterSubject {
		return nil, fmt.Errorf("%w: consumer %s on stream %s filters %q, expected %q",
			ErrNameConflict, want.Durable, a.names.eventsStream, have.FilterSubject, want.FilterSubject)
	}
	if have.AckWait == want.AckWait && have.MaxAckPending == want.MaxAckPending {
		return consumer, nil
	}
	have.AckWait, have.MaxAckPending = want.AckWait, want.MaxAckPending
	consumer, err = a.events.UpdateConsumer(ctx, have)
	if err != nil {
		return nil, fmt.Errorf("update consumer %s on stream %s: %w", want.Durable, a.names.eventsStream, err)
	}
	return consumer, nil
}
