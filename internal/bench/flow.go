package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// tracker counts handled events, records their latency and bounds how far
// the publisher runs ahead of the handlers.
type tracker struct {
	target  int64
	handled atomic.Int64
	latency histogram

	// credits holds one token per event published and not yet handled.
	credits chan struct{}

	done     chan struct{}
	doneOnce sync.Once
}

func newTracker(target, window int) *tracker {
	return &tracker{
		target:  int64(target),
		credits: make(chan struct{}, window),
		done:    make(chan struct{}),
	}
}

// observe records one handled event published at sent.
func (t *tracker) observe(sent time.Time) {
	t.latency.record(time.Since(sent))
	t.release()
	if t.handled.Add(1) == t.target {
		t.doneOnce.Do(func() { close(t.done) })
	}
}

// release frees the window slot of one event. A redelivered event finds no
// slot left to free, which is fine.
func (t *tracker) release() {
	select {
	case <-t.credits:
	default:
	}
}

// acquire takes n window slots, waiting for handlers to free them.
func (t *tracker) acquire(ctx context.Context, n int) error {
	for range n {
		select {
		case t.credits <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("wait for handlers to catch up: %w", ctx.Err())
		}
	}
	return nil
}

// publishFunc publishes count events, the first of them numbered first.
type publishFunc func(ctx context.Context, first, count int) error

// drive publishes total events in batches through publish, keeping the
// window, and waits until the tracker has seen its target. onProgress, when
// not nil, is called after each batch with the number published so far.
// It returns how long that took, from the first publish.
func drive(ctx context.Context, t *tracker, total, batch int, publish publishFunc,
	onProgress func(published int)) (time.Duration, error) {
	start := time.Now()
	for first := 0; first < total; first += batch {
		count := min(batch, total-first)
		if err := t.acquire(ctx, count); err != nil {
			return 0, err
		}
		if err := publish(ctx, first, count); err != nil {
			return 0, fmt.Errorf("publish events %d to %d: %w", first, first+count-1, err)
		}
		if onProgress != nil {
			onProgress(first + count)
		}
	}

	select {
	case <-t.done:
		return time.Since(start), nil
	case <-ctx.Done():
		return 0, fmt.Errorf("wait for handlers: %d of %d events handled: %w",
			t.handled.Load(), t.target, ctx.Err())
	}
}
