package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deadletter/deadletter/core"
)

// fillBatch is the number of entries written per round trip when filling
// a DLQ.
const fillBatch = 1_000

// fillDLQ writes n entries straight to the DLQ stream, in pipelined
// batches, with the fields DLQ.Add writes. Going through DLQ.Add would cost
// a round trip per entry and measure nothing the cases need.
func (r *runner) fillDLQ(ctx context.Context, prefix string, n int) error {
	stream, source := prefix+":dlq", prefix+":"+eventType
	failedAt := time.Now().UTC()

	// A replay reaches only a handler that has subscribed, that is one with
	// a consumer group on the event's stream.
	err := r.redis.XGroupCreateMkStream(ctx, source, handlerName, "$").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group %s on %s: %w", handlerName, source, err)
	}
	for first := 0; first < n; first += fillBatch {
		pipe := r.redis.Pipeline()
		for range min(fillBatch, n-first) {
			ev := r.source.event(true)
			data, err := ev.Marshal()
			if err != nil {
				return err
			}
			entry := core.Entry{
				EventData: data, Handler: handlerName, Error: errFailing.Error(), FailedAt: failedAt,
				EventType: ev.EventType, EventID: ev.EventID,
				AggregateType: ev.AggregateType, AggregateID: ev.AggregateID,
				Attempts: 4, FirstFailedAt: failedAt.Add(-14 * time.Second), ErrorType: core.ErrorTypeFailure,
				SourceStream: source, SourceID: "1-1",
			}
			fields := entry.Fields()
			values := make([]any, len(fields))
			for i, field := range fields {
				values[i] = field
			}
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: values})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("fill dlq %s: %w", stream, err)
		}
	}
	return nil
}

// runReplay fills a DLQ and replays every entry from one goroutine.
func runReplay(ctx context.Context, r *runner, prefix string) (Result, error) {
	return r.replayDLQ(ctx, prefix, 1)
}

// runReplayParallel replays with Config.ReplayWorkers goroutines.
func runReplayParallel(ctx context.Context, r *runner, prefix string) (Result, error) {
	return r.replayDLQ(ctx, prefix, r.cfg.ReplayWorkers)
}

// replayDLQ fills a DLQ, then lists it newest first, page by page, while
// workers replay the listed entries. It replays through core.Replayer when
// the DLQ implements it, and otherwise only moves each entry to the
// replayed stream, which is the bookkeeping half of a replay.
func (r *runner) replayDLQ(ctx context.Context, prefix string, workers int) (Result, error) {
	adapter, err := r.newRedisAdapter(prefix)
	if err != nil {
		return Result{}, err
	}
	defer adapter.Close()
	dlq := adapter.DLQ()
	n := r.cfg.DLQEntries
	if err := r.fillDLQ(ctx, prefix, n); err != nil {
		return Result{}, err
	}

	replay := dlq.MoveToReplayed
	note := "the Redis DLQ does not implement core.Replayer, so this measures MoveToReplayed per entry, " +
		"without delivering the events"
	if replayer, ok := dlq.(core.Replayer); ok {
		replay = replayer.Replay
		note = "through core.Replayer, which puts each event in its handler's retry schedule, due at once, " +
			"and moves the entry to the replayed stream; no handler runs"
	}

	mem := startSampler(r.cfg.SampleInterval)
	start := time.Now()
	replayed, err := replayListed(ctx, dlq, r.cfg.PageSize, workers, replay)
	elapsed := time.Since(start)
	heap, rss := mem.finish()
	if err != nil {
		return Result{}, err
	}
	if replayed != n {
		return Result{}, fmt.Errorf("replayed %d entries of %d", replayed, n)
	}
	return Result{
		Count: replayed, Elapsed: elapsed, PeakHeap: heap, PeakRSS: rss,
		Notes: []string{fmt.Sprintf("%s; pages of %d, %d replaying goroutines", note, r.cfg.PageSize, workers)},
	}, nil
}

// replayListed lists every DLQ entry and has workers replay them. It
// returns how many were replayed.
func replayListed(ctx context.Context, dlq core.DLQ, pageSize, workers int,
	replay func(ctx context.Context, id string, replayedAt time.Time) error) (int, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	ids := make(chan string, pageSize)
	var replayed atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for id := range ids {
				if err := replay(ctx, id, time.Now()); err != nil {
					cancel(fmt.Errorf("replay entry %s: %w", id, err))
					return
				}
				replayed.Add(1)
			}
		})
	}

	listErr := listAll(ctx, dlq, pageSize, func(page []core.Entry) {
		for _, entry := range page {
			select {
			case ids <- entry.ID:
			case <-ctx.Done():
				return
			}
		}
	})
	close(ids)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return int(replayed.Load()), err
	}
	return int(replayed.Load()), listErr
}

// listAll lists the DLQ newest first, one page at a time, passing each page
// to visit. Paging by the last id seen lists each entry once even while
// other goroutines move entries out.
func listAll(ctx context.Context, dlq core.DLQ, pageSize int, visit func([]core.Entry)) error {
	before := ""
	for ctx.Err() == nil {
		page, err := dlq.List(ctx, core.ListOptions{Limit: pageSize, Before: before})
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		visit(page)
		before = page[len(page)-1].ID
	}
	return ctx.Err()
}

// runMemoryDLQList fills a DLQ and lists all of it, newest first, one page
// at a time, sampling memory per quarter of the entries listed.
func runMemoryDLQList(ctx context.Context, r *runner, prefix string) (Result, error) {
	adapter, err := r.newRedisAdapter(prefix)
	if err != nil {
		return Result{}, err
	}
	defer adapter.Close()
	dlq := adapter.DLQ()
	n := r.cfg.DLQEntries
	if err := r.fillDLQ(ctx, prefix, n); err != nil {
		return Result{}, err
	}

	mem := startSampler(r.cfg.SampleInterval)
	quarters := newQuarters(n, mem)
	start := time.Now()
	listed := 0
	err = listAll(ctx, dlq, r.cfg.PageSize, func(page []core.Entry) {
		listed += len(page)
		quarters.progress(listed)
	})
	if err != nil {
		return Result{}, err
	}
	elapsed := time.Since(start)
	heap, rss := mem.finish()

	if listed != n {
		return Result{}, fmt.Errorf("listed %d entries of %d", listed, n)
	}
	res := Result{Count: listed, Elapsed: elapsed, PeakHeap: heap, PeakRSS: rss, QuarterHeap: quarters.finish()}
	res.Notes = append(res.Notes, quarters.note()+fmt.Sprintf(", pages of %d", r.cfg.PageSize))
	return res, nil
}
