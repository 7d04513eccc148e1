package redisstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/deadletter/deadletter/core"
)

// Subscriber delivers the events of one handler. Each subscription reads
// its stream through the handler's consumer group in batches, hands out up
// to Config.MaxInFlight messages at once, and acknowledges them in batches.
//
// A nacked message is not delivered again in place: it is parked with the
// pause from core.MetadataRetryAfter, so the messages behind it keep
// flowing, and taken again when the pause is over, by this process or any
// other consumer of the handler.
type Subscriber struct {
	adapter *Adapter
	handler string

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	running sync.WaitGroup
}

var _ message.Subscriber = (*Subscriber)(nil)

func newSubscriber(a *Adapter, handler string) *Subscriber {
	return &Subscriber{adapter: a, handler: handler, closing: make(chan struct{})}
}

// Subscribe starts consuming the stream of the event type topic. The
// returned channel is closed once ctx is done or the subscriber is closed,
// and the messages handed out have been acknowledged or the close timeout
// has passed.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	keys, err := s.adapter.keys(topic, s.handler)
	if err != nil {
		return nil, fmt.Errorf("subscribe handler %q: %w", s.handler, err)
	}

	if err := s.createGroup(ctx, keys); err != nil {
		return nil, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("subscribe handler %q to %q: subscriber %w", s.handler, topic, core.ErrClosed)
	}
	sub := newSubscription(s, ctx, keys)
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		sub.run(s.closing)
	}()
	return sub.out, nil
}

// createGroup creates the handler's consumer group, and the stream with it,
// unless they exist. While Redis does not respond, it tries again with a
// growing pause for up to setupTimeout, so that a bus started during a
// short outage waits for Redis instead of failing.
func (s *Subscriber) createGroup(ctx context.Context, keys handlerKeys) error {
	deadline := time.Now().Add(setupTimeout)
	pause := minErrorPause
	for {
		err := s.adapter.client.XGroupCreateMkStream(ctx, keys.stream, keys.group, s.adapter.cfg.StartFrom).Err()
		if err == nil || strings.HasPrefix(err.Error(), "BUSYGROUP") {
			return nil
		}
		var reply redis.Error
		if errors.As(err, &reply) || time.Now().Add(pause).After(deadline) {
			return fmt.Errorf("create consumer group %q on %q: %w", keys.group, keys.stream, err)
		}
		s.adapter.failures.Log(s.adapter.cfg.Logger, slog.LevelWarn, "create consumer group failed; trying again",
			slog.String(core.LogStream, keys.stream), slog.String(core.LogHandler, keys.group),
			slog.String(core.LogError, err.Error()))
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return fmt.Errorf("create consumer group %q on %q: %w", keys.group, keys.stream, ctx.Err())
		case <-s.closing:
			return fmt.Errorf("subscribe handler %q to %q: subscriber %w", s.handler, keys.stream, core.ErrClosed)
		}
		pause = nextErrorPause(pause)
	}
}

// Close stops every subscription and waits for them to hand back their
// messages, up to Config.CloseTimeout each.
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
	return nil
}
