package middleware

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/deadletter/deadletter/core"
)

// attempt is one delivery of a message to a handler, with what is known of
// the delivery's history.
type attempt struct {
	msg     *message.Message
	handler string

	// number counts the handler's attempts for this event, this one
	// included: the broker's delivery count, or a local count when the
	// subscriber cannot redeliver.
	number      int
	redelivered bool

	event         *core.Event
	firstFailedAt time.Time

	// errorType, when set, overrides the classification of the error at
	// dead-lettering; it carries a type recorded on an earlier delivery.
	errorType core.ErrorType
}

func (r *Retry) newAttempt(msg *message.Message) *attempt {
	a := &attempt{msg: msg, handler: r.handler, number: 1}

	if count, err := strconv.Atoi(msg.Metadata.Get(core.MetadataDeliveryCount)); err == nil && count > 0 {
		a.number = count
		a.redelivered = true
	}
	if first, err := time.Parse(time.RFC3339Nano, msg.Metadata.Get(core.MetadataFirstFailedAt)); err == nil {
		a.firstFailedAt = first
	}
	return a
}

// maxDecodeReason bounds the reason that a subscriber gives in
// core.MetadataDecodeError, because the reason is logged and stored in the
// DLQ entry's error field. The adapters' own reasons are far shorter.
const maxDecodeReason = 512

// decode parses the event from the payload. It returns an error wrapping
// core.ErrDecode when the subscriber could not decode the message or the
// payload is not a valid event.
func (a *attempt) decode() error {
	if reason := a.msg.Metadata.Get(core.MetadataDecodeError); reason != "" {
		return fmt.Errorf("%w: %s", core.ErrDecode, cutReason(reason))
	}
	if ev, ok := EventFromContext(a.msg.Context()); ok {
		a.event = &ev
		return nil
	}

	ev, err := core.DecodeEvent(a.msg.Payload)
	if err != nil {
		return err
	}
	a.event = &ev
	return nil
}

// cutReason returns reason cut to maxDecodeReason bytes at a character
// boundary, with a note of its full length when it was longer.
func cutReason(reason string) string {
	if len(reason) <= maxDecodeReason {
		return reason
	}
	n := maxDecodeReason
	for n > 0 && !utf8.RuneStart(reason[n]) {
		n--
	}
	return fmt.Sprintf("%s... (cut at %d of %d bytes)", reason[:n], n, len(reason))
}

// recordFailure stores a failed attempt's outcome on the message, for
// subscribers that keep retry state with the broker.
func (a *attempt) recordFailure(err error) {
	if a.firstFailedAt.IsZero() {
		a.firstFailedAt = time.Now().UTC()
	}
	a.msg.Metadata.Set(core.MetadataLastError, err.Error())
	a.msg.Metadata.Set(core.MetadataErrorType, string(core.Classify(err)))
	a.msg.Metadata.Set(core.MetadataFirstFailedAt, core.FormatTime(a.firstFailedAt))
}

// attrs returns the log fields that identify the attempt. They never
// include the payload.
func (a *attempt) attrs() []slog.Attr {
	return a.attrsForRetry(a.number - 1)
}

// attrsForRetry returns attrs with retry_attempt set to retry, where 0 is
// the first attempt.
func (a *attempt) attrsForRetry(retry int) []slog.Attr {
	attrs := make([]slog.Attr, 0, 8)
	if a.event != nil {
		attrs = append(attrs,
			slog.String(core.LogEventType, a.event.EventType),
			slog.String(core.LogEventID, a.event.EventID),
		)
	}
	attrs = append(attrs,
		slog.String(core.LogHandler, a.handler),
		slog.Int(core.LogRetryAttempt, retry),
	)
	if a.event != nil {
		attrs = append(attrs,
			slog.String(core.LogAggregateType, a.event.AggregateType),
			slog.String(core.LogAggregateID, a.event.AggregateID),
		)
	}
	return attrs
}

type eventKey struct{}

// withEvent returns ctx carrying ev, so that handlers read the decoded event
// instead of parsing the payload again.
func withEvent(ctx context.Context, ev *core.Event) context.Context {
	if ev == nil {
		return ctx
	}
	if current, ok := ctx.Value(eventKey{}).(*core.Event); ok && current == ev {
		return ctx
	}
	return context.WithValue(ctx, eventKey{}, ev)
}

// EventFromContext returns the event that Retry decoded from the message
// whose context ctx is. Handlers behind Retry use it to skip a second
// decode.
func EventFromContext(ctx context.Context) (core.Event, bool) {
	ev, ok := ctx.Value(eventKey{}).(*core.Event)
	if !ok || ev == nil {
		return core.Event{}, false
	}
	return *ev, true
}
