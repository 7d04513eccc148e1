package bench

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/deadletter/deadletter/core"
)

// eventType is the type of every event the cases publish.
const eventType = "bench.event"

// Keys inside an event's data. sentKey precedes the publish time in Unix
// nanoseconds; failKey marks an event whose handler fails for good in the
// head-of-line case.
const (
	sentKey = `"sent_ns":`
	failKey = `"fail":true`
)

// eventSource builds the events of a case: the same JSON form in every case,
// padded to the configured payload size.
type eventSource struct {
	aggregateID string
	pad         string
}

func newEventSource(payloadSize int) *eventSource {
	src := &eventSource{aggregateID: uuid.NewString()}
	// Measure an event without padding, then pad its data to the size.
	bare, _ := src.event(false).Marshal()
	src.pad = strings.Repeat("x", max(payloadSize-len(bare), 0))
	return src
}

// event returns a new event stamped with the current time.
func (s *eventSource) event(fail bool) core.Event {
	data := make([]byte, 0, len(s.pad)+64)
	data = append(data, '{')
	data = append(data, sentKey...)
	data = strconv.AppendInt(data, time.Now().UnixNano(), 10)
	if fail {
		data = append(data, ',')
		data = append(data, failKey...)
	}
	data = append(data, `,"pad":"`...)
	data = append(data, s.pad...)
	data = append(data, `"}`...)

	return core.Event{
		EventType:     eventType,
		EventID:       uuid.NewString(),
		AggregateType: "bench",
		AggregateID:   s.aggregateID,
		Data:          json.RawMessage(data),
		OccurredAt:    time.Now().UTC(),
	}
}

// encoded returns a new event's id and JSON form, as the baselines publish
// it.
func (s *eventSource) encoded() (id string, payload []byte, err error) {
	ev := s.event(false)
	payload, err = ev.Marshal()
	return ev.EventID, payload, err
}

// sentAt returns the publish time stamped in payload, or the zero time when
// it has none.
func sentAt(payload []byte) time.Time {
	i := bytes.Index(payload, []byte(sentKey))
	if i < 0 {
		return time.Time{}
	}
	return time.Unix(0, parseDigits(payload[i+len(sentKey):]))
}

// sentAtString is sentAt for a payload that go-redis returned as a string,
// without copying it.
func sentAtString(payload string) time.Time {
	i := strings.Index(payload, sentKey)
	if i < 0 {
		return time.Time{}
	}
	return time.Unix(0, parseDigits(payload[i+len(sentKey):]))
}

func parseDigits[T string | []byte](s T) int64 {
	var n int64
	for i := 0; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int64(s[i]-'0')
	}
	return n
}

func failing(data []byte) bool {
	return bytes.Contains(data, []byte(failKey))
}
