package metrics

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/inspect"
	"github.com/deadletter/deadletter/middleware"
)

// Outcomes of an attempt besides the error types.
const (
	OutcomeSuccess = "success"
	OutcomeSkipped = "skipped"
)

// Middleware is Watermill middleware that records each attempt of the
// handler it wraps: its outcome, its duration, and whether it was a retry.
//
// It must run inside the retry middleware, which calls it once per attempt:
// pass it in deadletter.Config.HandlerMiddleware, or, on a plain Watermill
// router, add it after the retry middleware. Outside the retry middleware
// it records one successful call per event, whatever happened inside.
func (m *Metrics) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) (produced []*message.Message, err error) {
		handler := message.HandlerNameFromCtx(msg.Context())
		eventType := eventTypeOf(msg)
		retry := deliveryCount(msg) > 1
		start := time.Now()

		defer func() {
			outcome := outcomeOf(err)
			v := recover()
			if v != nil {
				outcome = string(core.ErrorTypePanic)
			}
			m.handlerDuration.WithLabelValues(handler, eventType).Observe(time.Since(start).Seconds())
			m.attempts.WithLabelValues(handler, eventType, outcome).Inc()
			if retry {
				m.retries.WithLabelValues(handler, eventType, outcome).Inc()
			}
			if v != nil {
				panic(v)
			}
		}()
		return h(msg)
	}
}

func outcomeOf(err error) string {
	var skip *core.SkipError
	switch {
	case err == nil:
		return OutcomeSuccess
	case errors.As(err, &skip):
		return OutcomeSkipped
	}
	return string(core.Classify(err))
}

// eventTypeOf reads the event type from the event that the retry middleware
// decoded, or from the payload, or else from the topic subscribed to.
func eventTypeOf(msg *message.Message) string {
	if ev, ok := middleware.EventFromContext(msg.Context()); ok {
		return ev.EventType
	}
	var head struct {
		EventType string `json:"event_type"`
	}
	if json.Unmarshal(msg.Payload, &head) == nil && core.ValidEventType(head.EventType) {
		return head.EventType
	}
	if topic := message.SubscribeTopicFromCtx(msg.Context()); topic != "" {
		return topic
	}
	return inspect.UnknownEventType
}

// TODO: retries in place, for subscribers that set no delivery count, are
// not distinguished from first attempts, so handler_retries_total misses them.
func deliveryCount(msg *message.Message) int {
	n, _ := strconv.Atoi(msg.Metadata.Get(core.MetadataDeliveryCount))
	return n
}
