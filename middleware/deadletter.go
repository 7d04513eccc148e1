package middleware

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/deadletter/deadletter/core"
)

// dlqWriteTimeout bounds one DLQ write. The write runs even while the
// handler's context is being cancelled at shutdown, because finishing it
// spares a redelivery.
const dlqWriteTimeout = 10 * time.Second

// deadLetter writes the entry for a failed event. It returns the write's
// error, after logging it at critical level; the caller must then leave the
// message unacknowledged.
func (r *Retry) deadLetter(a *attempt, cause error) error {
	entry := r.entry(a, cause)

	ctx, cancel := context.WithTimeout(context.WithoutCancel(a.msg.Context()), dlqWriteTimeout)
	defer cancel()

	id, err := r.dlq.Add(ctx, entry)
	if err != nil {
		// While the DLQ is down every failing event hits this line once per
		// DLQ retry pause, so it is logged at most once a second with the
		// count of lines held back.
		if ok, suppressed := r.dlqFailures.allow(time.Now()); ok {
			r.log.LogAttrs(ctx, core.LevelCritical, "dead letter write failed; event left unacknowledged",
				append(a.attrs(), slog.String(core.LogError, err.Error()),
					slog.String("cause", cause.Error()), slog.Int("suppressed", suppressed))...)
		}
		return err
	}

	if ok, suppressed := r.dlqFailures.recovered(); ok {
		r.log.LogAttrs(ctx, slog.LevelWarn, "dead letter write succeeded after failed writes",
			slog.String(core.LogHandler, r.handler), slog.Int("suppressed", suppressed))
	}
	r.log.LogAttrs(ctx, core.LevelCritical, "event dead-lettered",
		append(a.attrs(),
			slog.String(core.LogError, cause.Error()),
			slog.String("error_type", string(entry.ErrorType)),
			slog.Int("attempts", entry.Attempts),
			slog.String("dlq_id", id))...)
	return nil
}

// deadLetterOrNack writes the entry, or on a failed write marks the message
// as pending dead-lettering and nacks it, so that the subscriber delivers it
// again after the DLQ retry pause.
func (r *Retry) deadLetterOrNack(a *attempt, cause error) error {
	if err := r.deadLetter(a, cause); err == nil {
		return nil
	}

	if a.errorType == "" {
		a.recordFailure(cause)
	}
	a.msg.Metadata.Set(core.MetadataDeadLetterPending, strconv.Itoa(a.number))
	a.msg.Metadata.Set(core.MetadataRetryAfter, r.dlqRetryPause.String())
	a.msg.Nack()
	return nil
}

func (r *Retry) entry(a *attempt, cause error) core.Entry {
	now := time.Now().UTC()
	first := a.firstFailedAt
	if first.IsZero() {
		first = now
	}
	errorType := a.errorType
	if errorType == "" {
		errorType = core.Classify(cause)
	}
	replays, _ := strconv.Atoi(a.msg.Metadata.Get(core.MetadataReplayCount))

	e := core.Entry{
		EventData:     a.msg.Payload,
		Handler:       r.handler,
		Error:         cause.Error(),
		FailedAt:      now,
		Attempts:      a.number,
		FirstFailedAt: first,
		ErrorType:     errorType,
		SourceStream:  a.msg.Metadata.Get(core.MetadataSourceStream),
		SourceID:      a.msg.Metadata.Get(core.MetadataSourceID),
		ReplayCount:   replays,
	}
	if a.event != nil {
		e.EventType = a.event.EventType
		e.EventID = a.event.EventID
		e.AggregateType = a.event.AggregateType
		e.AggregateID = a.event.AggregateID
	}
	return e
}
