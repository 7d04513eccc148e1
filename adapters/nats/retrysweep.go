package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/deadletter/deadletter/core"
)

// A message waiting for its retry is a nak'd message with a delay in the
// events stream. When MaxEventsPerType drops it during the pause, JetStream
// never delivers it again. Each subscription therefore sweeps its handler's
// retry states every AckWait. A state whose stream sequence is below the
// first sequence of the event type's subject has lost its message. The
// sweep writes a DLQ entry from the copy of the event in the state, then
// purges the state.

// sweepLoop runs sweepDropped every AckWait until the subscription ends,
// then closes done.
func (sub *subscription) sweepLoop(done chan<- struct{}) {
	defer close(done)
	ticker := time.NewTicker(sub.adapter.cfg.AckWait)
	defer ticker.Stop()
	for {
		select {
		case <-sub.ctx.Done():
			return
		case <-ticker.C:
		}
		ctx, cancel := context.WithTimeout(sub.ctx, sub.adapter.cfg.PublishTimeout)
		written, err := sub.sweepDropped(ctx)
		cancel()
		if written > 0 {
			sub.log.Log(context.Background(), core.LevelCritical,
				"events dropped from the stream while waiting for a retry; dead-lettered",
				slog.String(core.LogStream, sub.adapter.names.eventsStream), slog.Int("count", written))
		}
		if err == nil || sub.ctx.Err() != nil {
			continue
		}
		// While the server is unreachable every subscription fails here
		// each AckWait, so the line is throttled. A failed DLQ write is
		// critical, as in the retry middleware, and the state stays for
		// the next sweep.
		level := slog.LevelWarn
		if errors.Is(err, errDroppedWrite) {
			level = core.LevelCritical
		}
		sub.adapter.failures.Log(sub.log, level,
			"sweep for events dropped while waiting for a retry failed; trying again after AckWait",
			slog.String(core.LogError, err.Error()))
	}
}

// errDroppedWrite marks a failed DLQ write of an event dropped while it
// waited for a retry.
var errDroppedWrite = errors.New("dead-letter event dropped while waiting for a retry")

// sweepDropped dead-letters the events of this handler and event type that
// the events stream no longer holds while their retry state remains. It
// returns how many entries it wrote, without those that another process
// wrote first. When no retry state is waiting, it costs one request.
func (sub *subscription) sweepDropped(ctx context.Context) (int, error) {
	a := sub.adapter
	sequences, err := a.retryState.sequences(ctx, sub.handler, sub.eventType)
	if err != nil || len(sequences) == 0 {
		return 0, err
	}

	info, err := a.events.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("read stream %s: %w", a.names.eventsStream, err)
	}
	first, err := sub.firstSequence(ctx)
	if err != nil {
		return 0, err
	}

	written := 0
	var errs []error
	for _, seq := range sequences {
		if seq >= first {
			continue
		}
		wrote, err := sub.deadLetterDropped(ctx, seq, info.Created)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if wrote {
			written++
		}
	}
	return written, errors.Join(errs...)
}

// firstSequence returns the stream sequence of the oldest event of this
// event type, or math.MaxUint64 when the stream holds none.
func (sub *subscription) firstSequence(ctx context.Context) (uint64, error) {
	subject := sub.adapter.names.eventSubject(sub.eventType)
	msg, err := sub.adapter.events.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(subject))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return math.MaxUint64, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read first message of %s: %w", subject, err)
	}
	return msg.Sequence, nil
}

// deadLetterDropped writes the DLQ entry of the event at seq from its
// retry state, then purges the state. The entry's message id is the same
// in every process, so processes sweeping at once write one entry. It
// reports whether this call wrote the entry.
//
// NOTE: an event dropped while a retry of it is running can end up both
// handled and dead-lettered. The entry is then a duplicate, not a loss.
func (sub *subscription) deadLetterDropped(ctx context.Context, seq uint64, created time.Time) (bool, error) {
	a := sub.adapter
	subject := a.retryState.subject(sub.handler, sub.eventType, seq)
	state, err := a.retryState.stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		// Another process has dead-lettered it and purged the state.
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("load retry state %s: %w", subject, err)
	}

	entry := sub.droppedEntry(state, seq)
	msgID := fmt.Sprintf("deadletter-dropped-%s-%d-%d", sub.handler, created.UnixNano(), seq)
	_, duplicate, err := a.dlq.addOnce(ctx, entry, msgID)
	if err != nil {
		return false, fmt.Errorf("%w: %w", errDroppedWrite, err)
	}
	if err := a.retryState.clear(ctx, subject); err != nil {
		return !duplicate, err
	}
	return !duplicate, nil
}

// droppedEntry returns the DLQ entry of the event at seq, built from its
// retry state.
func (sub *subscription) droppedEntry(state *jetstream.RawStreamMsg, seq uint64) core.Entry {
	value := func(key string) string { return unescapeOrKeep(state.Header.Get(key)) }

	e := core.Entry{
		EventData:    state.Data,
		Handler:      sub.handler,
		FailedAt:     time.Now().UTC(),
		EventType:    sub.eventType,
		ErrorType:    core.ErrorTypeTrimmed,
		SourceStream: sub.adapter.names.eventsStream,
		SourceID:     strconv.FormatUint(seq, 10),
	}
	e.Attempts, _ = strconv.Atoi(value(core.MetadataDeliveryCount))
	e.ReplayCount, _ = strconv.Atoi(value(core.MetadataReplayCount))
	e.FirstFailedAt, _ = time.Parse(time.RFC3339Nano, value(core.MetadataFirstFailedAt))
	if pending := value(core.MetadataDeadLetterPending); pending != "" {
		// The handler had given up and only the DLQ write was left, so the
		// entry keeps the error type and attempts of that write.
		e.Attempts, _ = strconv.Atoi(pending)
		if errorType := value(core.MetadataErrorType); errorType != "" {
			e.ErrorType = core.ErrorType(errorType)
		}
	}
	if ev, err := core.DecodeEvent(state.Data); err == nil {
		e.EventType, e.EventID = ev.EventType, ev.EventID
		e.AggregateType, e.AggregateID = ev.AggregateType, ev.AggregateID
	}

	var lines []string
	if lastError := value(core.MetadataLastError); lastError != "" {
		lines = append(lines, lastError)
	}
	lines = append(lines, sub.droppedNote())
	if omitted := value(dataOmittedHeader); omitted != "" {
		lines = append(lines, fmt.Sprintf("event_data was not kept: its %s bytes did not fit the nats server's "+
			"max payload with the retry state.", omitted))
	}
	e.Error = strings.Join(lines, "\n")
	return e
}

// droppedNote returns the line that an entry's error gets after the last
// attempt's error, saying why the event was not retried.
func (sub *subscription) droppedNote() string {
	stream := sub.adapter.names.eventsStream
	if limit := sub.adapter.cfg.MaxEventsPerType; limit > 0 {
		return fmt.Sprintf("Not retried: the event was dropped from stream %s while it waited for a retry, "+
			"most likely by the MaxEventsPerType cap of %d events per type.", stream, limit)
	}
	return fmt.Sprintf("Not retried: the event was removed from stream %s while it waited for a retry.", stream)
}

// sequences returns the stream sequences of the events that have a retry
// state for handler and eventType, in one stream info request.
func (r *retryState) sequences(ctx context.Context, handler, eventType string) ([]uint64, error) {
	filter := r.subject(handler, eventType, 0)
	filter = strings.TrimSuffix(filter, "0") + "*"
	info, err := r.stream.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("list retry states %s: %w", filter, err)
	}

	sequences := make([]uint64, 0, len(info.State.Subjects))
	for subject := range info.State.Subjects {
		token := subject[strings.LastIndexByte(subject, '.')+1:]
		if seq, err := strconv.ParseUint(token, 10, 64); err == nil {
			sequences = append(sequences, seq)
		}
	}
	return sequences, nil
}
