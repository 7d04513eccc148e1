package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natsadapter "github.com/deadletter/deadletter/adapters/nats"
	"github.com/deadletter/deadletter/core"
)

// natsAckEvery is how many messages one acknowledgement covers in the
// nats.go baseline, whose consumer acknowledges all messages up to the one
// acknowledged.
const natsAckEvery = 100

// runNATSRaw measures nats.go alone: each batch is published
// asynchronously and awaited as a whole, and a pull consumer with a buffer
// of 1,000 messages acknowledges every 100th message, which covers the ones
// before it.
func runNATSRaw(ctx context.Context, r *runner, prefix string) (Result, error) {
	conn, err := nats.Connect(r.cfg.NATSURL)
	if err != nil {
		return Result{}, fmt.Errorf("connect to nats at %s: %w", r.cfg.NATSURL, err)
	}
	defer conn.Close()
	js, err := jetstream.New(conn)
	if err != nil {
		return Result{}, fmt.Errorf("open jetstream: %w", err)
	}

	subject := prefix + ".raw." + eventType
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: strings.ToUpper(prefix) + "_RAW", Subjects: []string{prefix + ".raw.>"},
		MaxMsgsPerSubject: streamMaxLen,
	})
	if err != nil {
		return Result{}, fmt.Errorf("create stream: %w", err)
	}
	consumer, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "bench", AckPolicy: jetstream.AckAllPolicy, MaxAckPending: 10 * streamMaxLen,
	})
	if err != nil {
		return Result{}, fmt.Errorf("create consumer: %w", err)
	}
	iter, err := consumer.Messages(jetstream.PullMaxMessages(1_000))
	if err != nil {
		return Result{}, fmt.Errorf("start pulling: %w", err)
	}
	defer iter.Stop()

	n := r.cfg.Events
	t := newTracker(n, r.cfg.Window)
	consumed := make(chan error, 1)
	go func() { consumed <- consumeNATS(ctx, iter, t) }()

	publish := func(ctx context.Context, _, count int) error {
		for range count {
			_, payload, err := r.source.encoded()
			if err != nil {
				return err
			}
			if _, err := js.PublishAsync(subject, payload); err != nil {
				return err
			}
		}
		select {
		case <-js.PublishAsyncComplete():
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	mem := startSampler(r.cfg.SampleInterval)
	elapsed, err := drive(ctx, t, n, r.cfg.BatchSize, publish, nil)
	heap, rss := mem.finish()
	iter.Stop()
	if err = errors.Join(err, <-consumed); err != nil {
		return Result{}, err
	}
	return latencyResult(t, elapsed, heap, rss), nil
}

// consumeNATS handles messages until the tracker has seen its target.
func consumeNATS(ctx context.Context, iter jetstream.MessagesContext, t *tracker) error {
	for handled := 0; int64(handled) < t.target; {
		msg, err := iter.Next(jetstream.NextMaxWait(time.Second))
		if errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			continue
		}
		if err != nil {
			return fmt.Errorf("pull message: %w", err)
		}
		t.observe(sentAt(msg.Data()))
		handled++
		if handled%natsAckEvery == 0 || int64(handled) == t.target {
			if err := msg.Ack(); err != nil {
				return fmt.Errorf("acknowledge messages: %w", err)
			}
		}
	}
	return nil
}

// runNATSDeadletter measures the bus on the NATS adapter with its defaults.
func runNATSDeadletter(ctx context.Context, r *runner, prefix string) (Result, error) {
	adapter, err := natsadapter.NewAdapter(natsadapter.Config{
		URL: r.cfg.NATSURL, Prefix: prefix, Logger: r.cfg.AdapterLogger,
	})
	if err != nil {
		return Result{}, fmt.Errorf("create nats adapter: %w", err)
	}

	n := r.cfg.Events
	t := newTracker(n, r.cfg.Window)
	rb, err := r.startBus(ctx, adapter, core.Policy{}, observeHandler(t))
	if err != nil {
		return Result{}, err
	}

	mem := startSampler(r.cfg.SampleInterval)
	elapsed, err := drive(ctx, t, n, r.cfg.BatchSize, r.publishEvents(rb.bus, 0), nil)
	heap, rss := mem.finish()
	if err = errors.Join(err, rb.stop()); err != nil {
		return Result{}, err
	}
	return latencyResult(t, elapsed, heap, rss), nil
}
