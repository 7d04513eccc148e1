package redisstream

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/deadletter/deadletter/core"
)

// Publisher appends messages to event streams. Topics are event types.
type Publisher struct {
	adapter *Adapter
	closed  atomic.Bool
}

// Publish appends msgs to the topic's stream in one round trip, trimming it
// to about Config.StreamMaxLen entries. It returns once Redis has stored
// them all, or an error; on an error some of them may have been stored. The
// first message's context and Config.PublishTimeout bound the wait.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if p.closed.Load() {
		return fmt.Errorf("publish to %q: publisher %w", topic, core.ErrClosed)
	}
	keys, err := p.adapter.keys(topic, "")
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if len(msgs) == 0 {
		return nil
	}

	parent := context.Background()
	if msgs[0].Context() != nil {
		parent = msgs[0].Context()
	}
	ctx, cancel := context.WithTimeout(parent, p.adapter.cfg.PublishTimeout)
	defer cancel()

	pipe := p.adapter.client.Pipeline()
	for _, msg := range msgs {
		values, err := encode(msg)
		if err != nil {
			return fmt.Errorf("publish to %q: %w", keys.stream, err)
		}
		args := &redis.XAddArgs{Stream: keys.stream, Values: values}
		if maxLen := p.adapter.cfg.StreamMaxLen; maxLen > 0 {
			args.MaxLen, args.Approx = maxLen, true
		}
		pipe.XAdd(ctx, args)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("publish %d messages to %q: %w", len(msgs), keys.stream, err)
	}
	return nil
}

// Close makes later calls to Publish fail. The connection belongs to the
// adapter and stays open.
func (p *Publisher) Close() error {
	p.closed.Store(true)
	return nil
}
