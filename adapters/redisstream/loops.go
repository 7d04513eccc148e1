package redisstream

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/redact"
)

// The pause after a failed call while Redis is unreachable starts at
// minErrorPause and doubles with each failure in a row, up to maxErrorPause.
const (
	minErrorPause = 50 * time.Millisecond
	maxErrorPause = 2 * time.Second
)

// nextErrorPause returns the pause after one more failure in a row.
func nextErrorPause(pause time.Duration) time.Duration {
	return min(2*pause, maxErrorPause)
}

// readLoop reads new entries through the consumer group, as many per round
// trip as there are free slots up to Config.BatchSize.
func (sub *subscription) readLoop() {
	errorPause := minErrorPause
	for {
		n := sub.acquire(sub.cfg.BatchSize)
		if n == 0 {
			return
		}

		streams, err := sub.client.XReadGroup(context.Background(), &redis.XReadGroupArgs{
			Group:    sub.keys.group,
			Consumer: sub.cfg.Consumer,
			Streams:  []string{sub.keys.stream, ">"},
			Count:    int64(n),
			Block:    sub.cfg.Block,
		}).Result()
		if err != nil {
			sub.release(n)
			if errors.Is(err, redis.Nil) {
				continue
			}
			sub.readFailed(err)
			if !sub.pause(errorPause) {
				return
			}
			errorPause = nextErrorPause(errorPause)
			continue
		}
		errorPause = minErrorPause

		// The entries wait here until emit hands each out. Held as in
		// flight meanwhile, they get their claim renewed and the sweep for
		// abandoned entries leaves them alone, however slow the handlers.
		sub.hold(streams)

		// Once the subscription stops, emit hands each remaining entry back
		// instead, so none is left pending under this consumer.
		used := 0
		for _, stream := range streams {
			for _, entry := range stream.Messages {
				used++
				sub.emit(decode(entry.ID, entry.Values), entry.ID, 1, false)
			}
		}
		sub.release(n - used)
	}
}

// hold marks the entries of a read as in flight from the time of the read,
// until emit hands each out.
func (sub *subscription) hold(streams []redis.XStream) {
	now := time.Now()
	sub.flightMu.Lock()
	defer sub.flightMu.Unlock()
	for _, stream := range streams {
		for _, entry := range stream.Messages {
			sub.inFlight[entry.ID] = flight{since: now}
		}
	}
}

// readFailed logs a failed read and recreates the consumer group when the
// stream or group was deleted under the subscription.
func (sub *subscription) readFailed(err error) {
	if strings.HasPrefix(err.Error(), "NOGROUP") {
		ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
		defer cancel()
		createErr := sub.client.XGroupCreateMkStream(ctx, sub.keys.stream, sub.keys.group, sub.cfg.StartFrom).Err()
		if createErr == nil || strings.HasPrefix(createErr.Error(), "BUSYGROUP") {
			return
		}
		err = createErr
	}
	sub.warn("read stream failed; retrying", err)
}

// pause waits d, or returns false if the subscription stops first.
func (sub *subscription) pause(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-sub.stop:
		return false
	}
}

// retryLoop takes due retries every Config.RetryPollInterval, and at once
// when a retry parked by this subscription comes due, and sweeps for entries
// abandoned by crashed consumers every half Config.ClaimIdle. While Redis
// is unreachable it polls with the growing pause of a failed read instead.
func (sub *subscription) retryLoop() {
	poll := sub.cfg.RetryPollInterval
	timer := time.NewTimer(poll)
	defer timer.Stop()
	timerAt := time.Now().Add(poll)
	sweep := time.NewTicker(sub.cfg.ClaimIdle / 2)
	defer sweep.Stop()
	errorPause := minErrorPause

	// dues holds the due times of retries parked here that are later than
	// the timer, so that none is left to the next poll.
	dues := &dueTimes{}
	for {
		select {
		case <-sub.stop:
			return
		case due := <-sub.wakeups:
			if due.Before(timerAt) {
				heap.Push(dues, timerAt)
				timer.Reset(time.Until(due))
				timerAt = due
			} else {
				heap.Push(dues, due)
			}
		case <-timer.C:
			more, ok := true, true
			for more && ok {
				more, ok = sub.takeDueRetries()
			}
			now := time.Now()
			if !ok {
				// The due times stay in dues, so that they are taken once
				// Redis responds again.
				timerAt = now.Add(errorPause)
				timer.Reset(errorPause)
				errorPause = nextErrorPause(errorPause)
				continue
			}
			errorPause = minErrorPause
			for dues.Len() > 0 && !(*dues)[0].After(now) {
				heap.Pop(dues)
			}
			timerAt = now.Add(poll)
			if dues.Len() > 0 && (*dues)[0].Before(timerAt) {
				timerAt = heap.Pop(dues).(time.Time)
			}
			timer.Reset(time.Until(timerAt))
		case <-sweep.C:
			sub.claimAbandoned()
			sub.checkTrimmed()
		}
	}
}

// dueTimes is a min-heap of times.
type dueTimes []time.Time

func (d dueTimes) Len() int           { return len(d) }
func (d dueTimes) Less(i, j int) bool { return d[i].Before(d[j]) }
func (d dueTimes) Swap(i, j int)      { d[i], d[j] = d[j], d[i] }
func (d *dueTimes) Push(x any)        { *d = append(*d, x.(time.Time)) }
func (d *dueTimes) Pop() any {
	old := *d
	last := old[len(old)-1]
	*d = old[:len(old)-1]
	return last
}

// takeDueRetries delivers due retries. It reports whether a full batch was
// taken, so that more may be due, and whether the call succeeded.
func (sub *subscription) takeDueRetries() (more, ok bool) {
	n := sub.acquire(sub.cfg.BatchSize)
	if n == 0 {
		return false, true
	}

	ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
	defer cancel()
	taken, err := claimDueScript.Run(ctx, sub.client, []string{sub.keys.retries, sub.keys.state},
		n, sub.cfg.ClaimIdle.Milliseconds()).Slice()
	if err != nil {
		sub.release(n)
		if errors.Is(err, redis.Nil) {
			return false, true
		}
		sub.warn("take due retries failed; retrying", err)
		return false, false
	}

	used := 0
	for i := 0; i+2 < len(taken); i += 3 {
		id, _ := taken[i].(string)
		count, _ := taken[i+1].(int64)
		raw, _ := taken[i+2].(string)
		used++
		sub.emit(sub.parkedToMessage(id, raw), id, count, true)
	}
	sub.release(n - used)
	return used == n, true
}

func (sub *subscription) parkedToMessage(id, raw string) *message.Message {
	var parked parkedMessage
	if err := json.Unmarshal([]byte(raw), &parked); err != nil {
		msg := message.NewMessage(id, []byte(raw))
		msg.Metadata.Set(core.MetadataDecodeError,
			"stored retry copy of "+id+" cannot be decoded: "+redact.JSONError(err))
		return msg
	}
	msg := message.NewMessage(parked.UUID, parked.Payload)
	for key, value := range parked.Metadata {
		msg.Metadata.Set(key, value)
	}
	return msg
}

// claimAbandoned takes over entries left unacknowledged for
// Config.ClaimIdle. Another consumer leaves them when its process crashes.
// This consumer leaves them when the reply of a read is lost while Redis
// restarts, or when a process restarts under the same Config.Consumer.
// Entries waiting for a retry belong to the parking consumer and are
// skipped, and so are this subscription's messages in flight.
func (sub *subscription) claimAbandoned() {
	ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
	defer cancel()

	pending, err := sub.client.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: sub.keys.stream, Group: sub.keys.group,
		Idle: sub.cfg.ClaimIdle, Start: "-", End: "+", Count: int64(sub.cfg.BatchSize),
	}).Result()
	if err != nil {
		sub.warn("list abandoned entries failed", err)
		return
	}

	counts := map[string]int64{}
	owners := map[string]string{}
	var ids []string
	sub.flightMu.Lock()
	for _, p := range pending {
		if p.Consumer == parkingConsumer {
			continue
		}
		if p.Consumer == sub.cfg.Consumer && sub.isOwnLive(p.ID) {
			continue
		}
		counts[p.ID] = p.RetryCount
		owners[p.ID] = p.Consumer
		ids = append(ids, p.ID)
	}
	sub.flightMu.Unlock()
	if len(ids) == 0 {
		return
	}

	entries, err := sub.client.XClaim(ctx, &redis.XClaimArgs{
		Stream: sub.keys.stream, Group: sub.keys.group, Consumer: sub.cfg.Consumer,
		MinIdle: sub.cfg.ClaimIdle, Messages: ids,
	}).Result()
	if err != nil {
		sub.warn("claim abandoned entries failed", err)
		return
	}

	claimed := make(map[string]bool, len(entries))
	for _, entry := range entries {
		if entry.Values != nil {
			claimed[entry.ID] = true
		}
	}
	var unclaimed []string
	for _, id := range ids {
		if !claimed[id] {
			unclaimed = append(unclaimed, id)
		}
	}
	if len(unclaimed) > 0 {
		sub.reportTrimmedPending(ctx, unclaimed, owners)
	}

	for _, entry := range entries {
		if entry.Values == nil {
			continue
		}
		msg := decode(entry.ID, entry.Values)
		if sub.acquire(1) == 0 {
			sub.handBack(msg, entry.ID, counts[entry.ID])
			continue
		}
		sub.log.Warn("claimed an abandoned entry", slog.String("id", entry.ID),
			slog.String("consumer", owners[entry.ID]))
		// XCLAIM counted this delivery on top of the earlier ones.
		sub.emit(msg, entry.ID, counts[entry.ID]+1, false)
	}
}

// reportTrimmedPending checks the entries that a claim did not return. An
// entry that another consumer took meanwhile is still in the stream. An
// entry that the trim removed while its reader was down was never handled
// and never will be. Those entries are logged at CRITICAL level and
// acknowledged, so that no later sweep tries them again.
func (sub *subscription) reportTrimmedPending(ctx context.Context, ids []string, owners map[string]string) {
	pipe := sub.client.Pipeline()
	ranges := make([]*redis.XMessageSliceCmd, len(ids))
	for i, id := range ids {
		ranges[i] = pipe.XRange(ctx, sub.keys.stream, id, id)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		sub.warn("look up unclaimed entries failed", err)
		return
	}

	var gone []string
	consumers := map[string]bool{}
	for i, cmd := range ranges {
		if len(cmd.Val()) == 0 {
			gone = append(gone, ids[i])
			consumers[owners[ids[i]]] = true
		}
	}
	if len(gone) == 0 {
		return
	}

	// Redis 7 drops such entries from the pending list when the claim
	// skips them, but older servers keep them there.
	if err := sub.client.XAck(ctx, sub.keys.stream, sub.keys.group, gone...).Err(); err != nil {
		sub.warn("acknowledge trimmed entries failed", err)
	}

	names := slices.Sorted(maps.Keys(consumers))
	sub.log.LogAttrs(ctx, core.LevelCritical,
		"events read by a stopped consumer were trimmed from the stream before they were handled; raise StreamMaxLen",
		slog.Int("trimmed_unhandled", len(gone)),
		slog.String("first_id", gone[0]),
		slog.String("consumers", strings.Join(names, ",")),
		slog.Int64("stream_max_len", sub.cfg.StreamMaxLen))
}

// isOwnLive reports whether the entry id is in flight, or settled with its
// acknowledgement not yet written. The caller holds flightMu.
func (sub *subscription) isOwnLive(id string) bool {
	if _, running := sub.inFlight[id]; running {
		return true
	}
	_, acking := sub.acking[id]
	return acking
}

// ackLoop acknowledges settled messages in batches: it takes what has
// queued up since the last round trip, so batches grow with the load and an
// idle subscription still acknowledges at once. A failed batch is sent
// again until it succeeds, so that messages handled during an outage are
// not delivered again. Meanwhile later acknowledgements queue up, and once
// the queue is full the subscription stops reading.
func (sub *subscription) ackLoop() {
	const maxBatch = 1000
	batch := make([]ackRequest, 0, maxBatch)
	for req := range sub.acks {
		batch = append(batch[:0], req)
	drain:
		for len(batch) < maxBatch {
			select {
			case next, ok := <-sub.acks:
				if !ok {
					break drain
				}
				batch = append(batch, next)
			default:
				break drain
			}
		}
		sub.flushAcksRetrying(batch)
	}
}

// flushAcksRetrying writes batch, retrying after each failure until the
// subscription stops, and then removes its ids from acking. Entries whose
// acknowledgement still failed stay pending and are delivered again after
// Config.ClaimIdle, which at-least-once delivery allows.
func (sub *subscription) flushAcksRetrying(batch []ackRequest) {
	defer func() {
		sub.flightMu.Lock()
		for _, req := range batch {
			delete(sub.acking, req.id)
		}
		sub.flightMu.Unlock()
	}()
	errorPause := minErrorPause
	for {
		err := sub.flushAcks(batch)
		if err == nil {
			return
		}
		select {
		case <-sub.stop:
			sub.log.Warn("acknowledge entries failed; they will be delivered again",
				slog.Int("entries", len(batch)), slog.String(core.LogError, err.Error()))
			return
		default:
		}
		sub.warn("acknowledge entries failed; retrying", err, slog.Int("entries", len(batch)))
		if !sub.pause(errorPause) {
			continue // one more try before giving up
		}
		errorPause = nextErrorPause(errorPause)
	}
}

// flushAcks acknowledges a batch in one round trip, removing the retry
// schedule and copy of messages that had been retried.
func (sub *subscription) flushAcks(batch []ackRequest) error {
	ids := make([]string, 0, len(batch))
	var retried, stateFields []string
	for _, req := range batch {
		// A replayed event has no pending entry to acknowledge.
		if !strings.HasPrefix(req.id, replayPrefix) {
			ids = append(ids, req.id)
		}
		if req.retried {
			retried = append(retried, req.id)
			stateFields = append(stateFields, "d:"+req.id, "n:"+req.id)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
	defer cancel()
	pipe := sub.client.Pipeline()
	if len(ids) > 0 {
		pipe.XAck(ctx, sub.keys.stream, sub.keys.group, ids...)
	}
	if len(retried) > 0 {
		members := make([]any, len(retried))
		for i, id := range retried {
			members[i] = id
		}
		pipe.ZRem(ctx, sub.keys.retries, members...)
		pipe.HDel(ctx, sub.keys.state, stateFields...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	return nil
}

// leaseLoop renews the claim on messages whose handler has run for a third
// of Config.ClaimIdle, so that no other consumer takes them over.
func (sub *subscription) leaseLoop() {
	every := sub.cfg.ClaimIdle / 3
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-sub.stop:
			return
		case <-ticker.C:
			sub.renewLeases(every)
		}
	}
}

func (sub *subscription) renewLeases(olderThan time.Duration) {
	var fresh []string
	retried := []any{sub.cfg.ClaimIdle.Milliseconds()}
	sub.flightMu.Lock()
	for id, f := range sub.inFlight {
		if time.Since(f.since) < olderThan {
			continue
		}
		if f.retried {
			retried = append(retried, id)
		} else {
			fresh = append(fresh, id)
		}
	}
	sub.flightMu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
	defer cancel()
	if len(fresh) > 0 {
		// Claiming an entry for its own consumer resets its idle time
		// without counting a delivery.
		err := sub.client.XClaimJustID(ctx, &redis.XClaimArgs{
			Stream: sub.keys.stream, Group: sub.keys.group, Consumer: sub.cfg.Consumer, Messages: fresh,
		}).Err()
		if err != nil {
			sub.warn("renew claim on running entries failed", err)
		}
	}
	if len(retried) > 1 {
		if err := extendLeaseScript.Run(ctx, sub.client, []string{sub.keys.retries}, retried...).Err(); err != nil {
			sub.warn("renew lease on running retries failed", err)
		}
	}
}
