package redisstream

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/deadletter/deadletter/core"
)

// maxErrorPause caps the pause between failed reads while Redis is down.
const maxErrorPause = 2 * time.Second

// readLoop reads new entries through the consumer group, as many per round
// trip as there are free slots up to Config.BatchSize.
func (sub *subscription) readLoop() {
	errorPause := 50 * time.Millisecond
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
			errorPause = min(2*errorPause, maxErrorPause)
			continue
		}
		errorPause = 50 * time.Millisecond

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
	sub.log.Error("read stream failed; retrying", slog.String(core.LogError, err.Error()))
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
// abandoned by crashed consumers every half Config.ClaimIdle.
func (sub *subscription) retryLoop() {
	poll := sub.cfg.RetryPollInterval
	timer := time.NewTimer(poll)
	defer timer.Stop()
	timerAt := time.Now().Add(poll)
	sweep := time.NewTicker(sub.cfg.ClaimIdle / 2)
	defer sweep.Stop()

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
			for sub.takeDueRetries() {
			}
			now := time.Now()
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
			ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
			sub.checkTrimmed(ctx)
			cancel()
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

// takeDueRetries delivers due retries and reports whether a full batch was
// taken, so that more may be due.
func (sub *subscription) takeDueRetries() bool {
	n := sub.acquire(sub.cfg.BatchSize)
	if n == 0 {
		return false
	}

	ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
	defer cancel()
	taken, err := claimDueScript.Run(ctx, sub.client, []string{sub.keys.retries, sub.keys.state},
		n, sub.cfg.ClaimIdle.Milliseconds()).Slice()
	if err != nil {
		sub.release(n)
		if !errors.Is(err, redis.Nil) {
			sub.log.Error("take due retries failed", slog.String(core.LogError, err.Error()))
		}
		return false
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
	return used == n
}

func (sub *subscription) parkedToMessage(id, raw string) *message.Message {
	var parked parkedMessage
	if err := json.Unmarshal([]byte(raw), &parked); err != nil {
		msg := message.NewMessage(id, []byte(raw))
		msg.Metadata.Set(core.MetadataDecodeError, "stored retry copy of "+id+" is not valid JSON: "+err.Error())
		return msg
	}
	msg := message.NewMessage(parked.UUID, parked.Payload)
	for key, value := range parked.Metadata {
		msg.Metadata.Set(key, value)
	}
	return msg
}

// claimAbandoned takes over entries that another consumer received and left
// unacknowledged for Config.ClaimIdle, as when its process crashed. Entries
// waiting for a retry belong to the parking consumer and are skipped.
func (sub *subscription) claimAbandoned() {
	ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
	defer cancel()

	pending, err := sub.client.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: sub.keys.stream, Group: sub.keys.group,
		Idle: sub.cfg.ClaimIdle, Start: "-", End: "+", Count: int64(sub.cfg.BatchSize),
	}).Result()
	if err != nil {
		sub.log.Error("list abandoned entries failed", slog.String(core.LogError, err.Error()))
		return
	}

	counts := map[string]int64{}
	var ids []string
	for _, p := range pending {
		if p.Consumer == parkingConsumer || p.Consumer == sub.cfg.Consumer {
			continue
		}
		counts[p.ID] = p.RetryCount
		ids = append(ids, p.ID)
	}
	if len(ids) == 0 {
		return
	}

	entries, err := sub.client.XClaim(ctx, &redis.XClaimArgs{
		Stream: sub.keys.stream, Group: sub.keys.group, Consumer: sub.cfg.Consumer,
		MinIdle: sub.cfg.ClaimIdle, Messages: ids,
	}).Result()
	if err != nil {
		sub.log.Error("claim abandoned entries failed", slog.String(core.LogError, err.Error()))
		return
	}

	for _, entry := range entries {
		msg := decode(entry.ID, entry.Values)
		if sub.acquire(1) == 0 {
			sub.handBack(msg, entry.ID, counts[entry.ID])
			continue
		}
		sub.log.Warn("claimed an entry abandoned by another consumer", slog.String("id", entry.ID))
		// XCLAIM counted this delivery on top of the earlier ones.
		sub.emit(msg, entry.ID, counts[entry.ID]+1, false)
	}
}

// ackLoop acknowledges settled messages in batches: it takes what has
// queued up since the last round trip, so batches grow with the load and an
// idle subscription still acknowledges at once.
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
		sub.flushAcks(batch)
	}
}

// flushAcks acknowledges a batch in one round trip, removing the retry
// schedule and copy of messages that had been retried. A failed
// acknowledgement leaves entries pending; they are delivered again, which
// at-least-once delivery allows.
func (sub *subscription) flushAcks(batch []ackRequest) {
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
		sub.log.Error("acknowledge entries failed; they will be delivered again",
			slog.Int("entries", len(ids)), slog.String(core.LogError, err.Error()))
	}
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
			sub.log.Error("renew claim on running entries failed", slog.String(core.LogError, err.Error()))
		}
	}
	if len(retried) > 1 {
		if err := extendLeaseScript.Run(ctx, sub.client, []string{sub.keys.retries}, retried...).Err(); err != nil {
			sub.log.Error("renew lease on running retries failed", slog.String(core.LogError, err.Error()))
		}
	}
}
