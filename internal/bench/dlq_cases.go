package bench

import (
	"context"
	"fmt"
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

// runReplay fills a DLQ and replays every entry from one goroutine: it
// lists the newest page and replays each entry of it, until the DLQ is
// empty. It replays through core.Replayer when the DLQ implements it, and
// otherwise only moves each entry to the replayed stream, which is the
// bookkeeping half of a replay.
func runReplay(ctx context.Context, r *runner, prefix string) (Result, error) {
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
	note := "the Redis DLQ does not implement core.Replayer, so this measures List then MoveToReplayed per entry, without delivering the events"
	if replayer, ok := dlq.(core.Replayer); ok {
		replay = replayer.Replay
		note = "through core.Replayer: each entry's event goes back to its handler and the entry moves to the replayed stream"
	}

	mem := startSampler(r.cfg.SampleInterval)
	start := time.Now()
	replayed := 0
	for replayed < n {
		page, err := dlq.List(ctx, core.ListOptions{Limit: r.cfg.PageSize})
		if err != nil {
			return Result{}, err
		}
		if len(page) == 0 {
			break
		}
		for _, entry := range page {
			if err := replay(ctx, entry.ID, time.Now()); err != nil {
				return Result{}, fmt.Errorf("replay entry %s: %w", entry.ID, err)
			}
			replayed++
		}
	}
	elapsed := time.Since(start)
	heap, rss := mem.finish()

	if replayed != n {
		return Result{}, fmt.Errorf("replayed %d entries of %d", replayed, n)
	}
	return Result{
		Count: replayed, Elapsed: elapsed, PeakHeap: heap, PeakRSS: rss,
		Notes: []string{fmt.Sprintf("%s; pages of %d, one goroutine", note, r.cfg.PageSize)},
	}, nil
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
	listed, before := 0, ""
	for listed < n {
		page, err := dlq.List(ctx, core.ListOptions{Limit: r.cfg.PageSize, Before: before})
		if err != nil {
			return Result{}, err
		}
		if len(page) == 0 {
			break
		}
		listed += len(page)
		before = page[len(page)-1].ID
		quarters.progress(listed)
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
