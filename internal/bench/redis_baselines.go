package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmredis "github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
)

// rawReadCount is the number of entries the go-redis baseline reads per
// round trip.
const rawReadCount = 100

// runRedisRaw measures the practical limit of Redis Streams from Go. One
// goroutine publishes each batch in one pipelined round trip. One consumer
// reads up to 100 entries per XREADGROUP and sends the XACK of the previous
// batch in the same round trip.
func runRedisRaw(ctx context.Context, r *runner, prefix string) (Result, error) {
	stream := prefix + ":" + eventType
	const group, consumer = "bench", "bench-1"
	if err := r.redis.XGroupCreateMkStream(ctx, stream, group, "0").Err(); err != nil {
		return Result{}, fmt.Errorf("create consumer group on %s: %w", stream, err)
	}

	n := r.cfg.Events
	t := newTracker(n, r.cfg.Window)
	consumed := make(chan error, 1)
	go func() { consumed <- consumeRaw(ctx, r.redis, stream, group, consumer, t) }()

	publish := func(ctx context.Context, _, count int) error {
		pipe := r.redis.Pipeline()
		for range count {
			id, payload, err := r.source.encoded()
			if err != nil {
				return err
			}
			pipe.XAdd(ctx, &redis.XAddArgs{
				Stream: stream, MaxLen: streamMaxLen, Approx: true,
				Values: []any{"uuid", id, "payload", payload},
			})
		}
		_, err := pipe.Exec(ctx)
		return err
	}

	mem := startSampler(r.cfg.SampleInterval)
	elapsed, err := drive(ctx, t, n, r.cfg.BatchSize, publish, nil)
	heap, rss := mem.finish()
	if err != nil {
		return Result{}, err
	}
	if err := <-consumed; err != nil {
		return Result{}, err
	}
	return latencyResult(t, elapsed, heap, rss), nil
}

// consumeRaw reads and acknowledges entries until the tracker has seen its
// target or ctx ends.
func consumeRaw(ctx context.Context, client *redis.Client, stream, group, consumer string, t *tracker) error {
	var unacked []string
	for t.handled.Load() < t.target {
		if ctx.Err() != nil {
			return fmt.Errorf("consume %s: %w", stream, ctx.Err())
		}
		pipe := client.Pipeline()
		if len(unacked) > 0 {
			pipe.XAck(ctx, stream, group, unacked...)
		}
		read := pipe.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: group, Consumer: consumer, Streams: []string{stream, ">"},
			Count: rawReadCount, Block: 100 * time.Millisecond,
		})
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		unacked = unacked[:0]

		streams, _ := read.Result()
		for _, s := range streams {
			for _, entry := range s.Messages {
				payload, _ := entry.Values["payload"].(string)
				t.observe(sentAtString(payload))
				unacked = append(unacked, entry.ID)
			}
		}
	}
	if len(unacked) > 0 {
		if err := client.XAck(ctx, stream, group, unacked...).Err(); err != nil {
			return fmt.Errorf("acknowledge entries of %s: %w", stream, err)
		}
	}
	return nil
}

// runRedisWatermill measures watermill-redisstream v1.4.5 with its defaults
// under a Watermill router with one handler and no middleware.
func runRedisWatermill(ctx context.Context, r *runner, prefix string) (Result, error) {
	stream := prefix + ":" + eventType
	logger := watermill.NopLogger{}

	// The publisher closes its client, so it gets one of its own.
	pubClient, subClient, err := twoClients(r.cfg.RedisURL)
	if err != nil {
		return Result{}, err
	}
	defer subClient.Close()
	publisher, err := wmredis.NewPublisher(wmredis.PublisherConfig{
		Client: pubClient, Maxlens: map[string]int64{stream: streamMaxLen},
	}, logger)
	if err != nil {
		_ = pubClient.Close()
		return Result{}, fmt.Errorf("create watermill-redisstream publisher: %w", err)
	}
	defer publisher.Close()
	subscriber, err := wmredis.NewSubscriber(wmredis.SubscriberConfig{
		Client: subClient, ConsumerGroup: "bench", DisableIndefiniteInitialBlock: true,
	}, logger)
	if err != nil {
		return Result{}, fmt.Errorf("create watermill-redisstream subscriber: %w", err)
	}

	n := r.cfg.Events
	t := newTracker(n, r.cfg.Window)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, logger)
	if err != nil {
		return Result{}, fmt.Errorf("create router: %w", err)
	}
	router.AddConsumerHandler("bench", stream, subscriber, func(msg *message.Message) error {
		t.observe(sentAt(msg.Payload))
		return nil
	})
	stop, err := runRouter(ctx, router)
	if err != nil {
		return Result{}, err
	}

	publish := func(ctx context.Context, _, count int) error {
		msgs := make([]*message.Message, count)
		for i := range msgs {
			id, payload, err := r.source.encoded()
			if err != nil {
				return err
			}
			msgs[i] = message.NewMessage(id, payload)
			msgs[i].SetContext(ctx)
		}
		return publisher.Publish(stream, msgs...)
	}

	mem := startSampler(r.cfg.SampleInterval)
	elapsed, err := drive(ctx, t, n, r.cfg.BatchSize, publish, nil)
	heap, rss := mem.finish()
	stopErr := stop()
	if err != nil {
		return Result{}, err
	}
	if stopErr != nil {
		return Result{}, stopErr
	}
	return latencyResult(t, elapsed, heap, rss), nil
}

func twoClients(url string) (*redis.Client, *redis.Client, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, nil, fmt.Errorf("parse redis url: %w", err)
	}
	return redis.NewClient(opts), redis.NewClient(opts), nil
}

// runRouter starts router and waits until its handlers run. The returned
// function closes the router and waits for Run to return.
func runRouter(ctx context.Context, router *message.Router) (func() error, error) {
	done := make(chan error, 1)
	go func() { done <- router.Run(context.WithoutCancel(ctx)) }()
	select {
	case <-router.Running():
	case err := <-done:
		return nil, fmt.Errorf("run router: %w", err)
	case <-ctx.Done():
		_ = router.Close()
		return nil, fmt.Errorf("wait for router to start: %w", ctx.Err())
	}
	return func() error {
		closeErr := router.Close()
		if err := <-done; err != nil {
			return fmt.Errorf("run router: %w", err)
		}
		if closeErr != nil {
			return fmt.Errorf("close router: %w", closeErr)
		}
		return nil
	}, nil
}

// latencyResult fills a result from a tracker and memory peaks.
func latencyResult(t *tracker, elapsed time.Duration, heap, rss uint64) Result {
	return Result{
		Count:    int(t.handled.Load()),
		Elapsed:  elapsed,
		P50:      t.latency.quantile(0.50),
		P99:      t.latency.quantile(0.99),
		PeakHeap: heap,
		PeakRSS:  rss,
	}
}
