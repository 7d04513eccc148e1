package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/adapters/redisstream"
	"github.com/deadletter/deadletter/core"
)

// handlerName names the handler of every bus case.
const handlerName = "bench"

// errFailing is the error the handler returns for events marked to fail.
var errFailing = errors.New("bench: this event is marked to fail")

// runningBus is a bus whose handlers run, on an adapter of its own.
type runningBus struct {
	bus     *deadletter.Bus
	adapter core.Adapter
	done    chan error
	cancel  context.CancelFunc
}

// startBus starts a bus on adapter with one handler and waits until it
// runs. The bus logs to Config.AdapterLogger.
func (r *runner) startBus(ctx context.Context, adapter core.Adapter, policy core.Policy,
	fn deadletter.HandlerFunc) (*runningBus, error) {
	bus, err := deadletter.New(deadletter.Config{
		Adapter: adapter, Policy: policy, Logger: r.cfg.AdapterLogger,
	})
	if err != nil {
		_ = adapter.Close()
		return nil, fmt.Errorf("create bus: %w", err)
	}
	if err := bus.Handle(handlerName, eventType, fn); err != nil {
		_ = adapter.Close()
		return nil, fmt.Errorf("add handler: %w", err)
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rb := &runningBus{bus: bus, adapter: adapter, done: make(chan error, 1), cancel: cancel}
	go func() { rb.done <- bus.Run(runCtx) }()
	select {
	case <-bus.Running():
		return rb, nil
	case err := <-rb.done:
		cancel()
		_ = adapter.Close()
		return nil, fmt.Errorf("run bus: %w", err)
	case <-ctx.Done():
		_ = rb.stop()
		return nil, fmt.Errorf("wait for bus to start: %w", ctx.Err())
	}
}

// stop closes the bus, waits for Run to return and closes the adapter.
func (rb *runningBus) stop() error {
	closeErr := rb.bus.Close()
	rb.cancel()
	runErr := <-rb.done
	return errors.Join(closeErr, runErr, rb.adapter.Close())
}

// publishEvents returns a publishFunc that publishes through the bus, count
// events per call; failEvery > 0 marks the events numbered failEvery/2,
// failEvery/2 + failEvery, ... to fail.
func (r *runner) publishEvents(bus *deadletter.Bus, failEvery int) publishFunc {
	return func(ctx context.Context, first, count int) error {
		events := make([]core.Event, count)
		for i := range events {
			events[i] = r.source.event(failEvery > 0 && (first+i)%failEvery == failEvery/2)
		}
		return bus.Publish(ctx, events...)
	}
}

func (r *runner) newRedisAdapter(prefix string) (*redisstream.Adapter, error) {
	adapter, err := redisstream.NewAdapter(redisstream.Config{
		URL:    r.cfg.RedisURL,
		Prefix: prefix,
		// The replay and head-of-line cases fill the DLQ past its default
		// cap of 5,000; the keys are deleted after each case.
		DLQMaxLen: -1,
		Logger:    r.cfg.AdapterLogger,
	})
	if err != nil {
		return nil, fmt.Errorf("create redis adapter: %w", err)
	}
	return adapter, nil
}

// observeHandler returns a handler that records each event in t.
func observeHandler(t *tracker) deadletter.HandlerFunc {
	return func(_ context.Context, ev core.Event) error {
		t.observe(sentAt(ev.Data))
		return nil
	}
}

func runRedisDeadletter(ctx context.Context, r *runner, prefix string) (Result, error) {
	return r.runRedisBus(ctx, prefix, r.cfg.Events, r.cfg.BatchSize)
}

// runRedisDeadletterSingle publishes one event per Publish call, from one
// goroutine, so each event costs a round trip before the next.
func runRedisDeadletterSingle(ctx context.Context, r *runner, prefix string) (Result, error) {
	return r.runRedisBus(ctx, prefix, r.cfg.Events, 1)
}

func (r *runner) runRedisBus(ctx context.Context, prefix string, n, batch int) (Result, error) {
	adapter, err := r.newRedisAdapter(prefix)
	if err != nil {
		return Result{}, err
	}
	t := newTracker(n, r.cfg.Window)
	rb, err := r.startBus(ctx, adapter, core.Policy{}, observeHandler(t))
	if err != nil {
		return Result{}, err
	}

	mem := startSampler(r.cfg.SampleInterval)
	elapsed, err := drive(ctx, t, n, batch, r.publishEvents(rb.bus, 0), nil)
	heap, rss := mem.finish()
	if err = errors.Join(err, rb.stop()); err != nil {
		return Result{}, err
	}
	return latencyResult(t, elapsed, heap, rss), nil
}

// runMemoryEvents passes Config.MemoryEvents events through the bus on
// Redis and records the peak heap of each quarter of them.
func runMemoryEvents(ctx context.Context, r *runner, prefix string) (Result, error) {
	adapter, err := r.newRedisAdapter(prefix)
	if err != nil {
		return Result{}, err
	}
	n := r.cfg.MemoryEvents
	t := newTracker(n, r.cfg.Window)
	rb, err := r.startBus(ctx, adapter, core.Policy{}, observeHandler(t))
	if err != nil {
		return Result{}, err
	}

	mem := startSampler(r.cfg.SampleInterval)
	quarters := newQuarters(n, mem)
	elapsed, err := drive(ctx, t, n, r.cfg.BatchSize, r.publishEvents(rb.bus, 0), quarters.progress)
	heap, rss := mem.finish()
	if err = errors.Join(err, rb.stop()); err != nil {
		return Result{}, err
	}

	res := latencyResult(t, elapsed, heap, rss)
	res.QuarterHeap = quarters.finish()
	res.Notes = append(res.Notes, quarters.note())
	return res, nil
}

// runHeadOfLine publishes events of which one in Config.FailEvery fails
// for good under Config.FailPolicy, and measures the healthy ones. It then
// waits until every failing event is in the DLQ.
func runHeadOfLine(ctx context.Context, r *runner, prefix string) (Result, error) {
	adapter, err := r.newRedisAdapter(prefix)
	if err != nil {
		return Result{}, err
	}

	n, every := r.cfg.Events, r.cfg.FailEvery
	failCount := (n + every - 1 - every/2) / every
	t := newTracker(n-failCount, r.cfg.Window)
	// A failing event frees its window slot on its first attempt, so that
	// its retries do not hold the publisher back.
	var seen sync.Map
	handler := func(_ context.Context, ev core.Event) error {
		if failing(ev.Data) {
			if _, again := seen.LoadOrStore(ev.EventID, true); !again {
				t.release()
			}
			return errFailing
		}
		t.observe(sentAt(ev.Data))
		return nil
	}
	rb, err := r.startBus(ctx, adapter, r.cfg.FailPolicy, handler)
	if err != nil {
		return Result{}, err
	}

	mem := startSampler(r.cfg.SampleInterval)
	elapsed, err := drive(ctx, t, n, r.cfg.BatchSize, r.publishEvents(rb.bus, every), nil)
	healthyDone := time.Now()
	var dlqWait time.Duration
	if err == nil {
		err = waitForDLQ(ctx, rb.bus.DLQ(), int64(failCount))
		dlqWait = time.Since(healthyDone)
	}
	heap, rss := mem.finish()
	if err = errors.Join(err, rb.stop()); err != nil {
		return Result{}, err
	}

	res := latencyResult(t, elapsed, heap, rss)
	policy := r.cfg.FailPolicy.WithDefaults()
	res.Notes = append(res.Notes, fmt.Sprintf(
		"%d of %d events failed for good (%d retries, first pause %s); all were in the DLQ %.1f s after the last healthy event was handled",
		failCount, n, policy.MaxRetries, policy.Initial, dlqWait.Seconds()))
	return res, nil
}

// waitForDLQ waits until the DLQ holds want entries, or ctx ends.
func waitForDLQ(ctx context.Context, dlq core.DLQ, want int64) error {
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	for {
		got, err := dlq.Len(ctx)
		if err != nil {
			return fmt.Errorf("wait for %d dlq entries: %w", want, err)
		}
		if got >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %d dlq entries, %d there: %w", want, got, ctx.Err())
		case <-ticker.C:
		}
	}
}

// runRedisAdapter runs the Redis adapter's publisher and subscriber without
// a router or middleware, which separates the adapter's cost from the
// bus's. The handler loop acknowledges each message after recording it.
func runRedisAdapter(ctx context.Context, r *runner, prefix string) (Result, error) {
	adapter, err := r.newRedisAdapter(prefix)
	if err != nil {
		return Result{}, err
	}
	defer adapter.Close()
	subscriber, err := adapter.Subscriber(handlerName)
	if err != nil {
		return Result{}, err
	}
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	messages, err := subscriber.Subscribe(subCtx, eventType)
	if err != nil {
		return Result{}, err
	}

	n := r.cfg.Events
	t := newTracker(n, r.cfg.Window)
	go func() {
		for msg := range messages {
			t.observe(sentAt(msg.Payload))
			msg.Ack()
		}
	}()
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
		return adapter.Publisher().Publish(eventType, msgs...)
	}

	mem := startSampler(r.cfg.SampleInterval)
	elapsed, err := drive(ctx, t, n, r.cfg.BatchSize, publish, nil)
	heap, rss := mem.finish()
	if err = errors.Join(err, subscriber.Close()); err != nil {
		return Result{}, err
	}
	return latencyResult(t, elapsed, heap, rss), nil
}
