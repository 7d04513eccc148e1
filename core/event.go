package core

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/google/uuid"
)

// Event is a domain event: something that happened to an aggregate, such as
// a patient being registered. Its JSON form is what travels on the broker and
// what a dead letter entry keeps byte for byte.
type Event struct {
	// EventType names what happened, for example "patient.registered". It
	// selects the stream or subject the event is published on.
	EventType string `json:"event_type"`

	// EventID identifies this occurrence. It is a UUID.
	EventID string `json:"event_id"`

	// AggregateType names the kind of entity the event is about, for
	// example "patient".
	AggregateType string `json:"aggregate_type"`

	// AggregateID identifies the entity. It is a UUID.
	AggregateID string `json:"aggregate_id"`

	// Data holds the event's details as a JSON object.
	Data json.RawMessage `json:"data"`

	// OccurredAt is when the event happened, in UTC.
	OccurredAt time.Time `json:"occurred_at"`
}

// eventTypePattern limits event types to characters that are valid in Redis
// key names and NATS subjects alike.
var eventTypePattern = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// NewEvent returns an event of the given type about one aggregate, with a
// fresh event id, the current UTC time and data encoded as JSON. It returns
// an error wrapping ErrInvalidEvent when data does not encode to a JSON
// object or a field is invalid.
func NewEvent(eventType, aggregateType, aggregateID string, data any) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("%w: encode data of %q: %v", ErrInvalidEvent, eventType, err)
	}

	ev := Event{
		EventType:     eventType,
		EventID:       uuid.NewString(),
		AggregateType: aggregateType,
		AggregateID:   aggregateID,
		Data:          raw,
		OccurredAt:    time.Now().UTC(),
	}
	if err := ev.Validate(); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// Validate reports the first invalid field of the event as an error wrapping
// ErrInvalidEvent.
func (e Event) Validate() error {
	switch {
	case !ValidEventType(e.EventType):
		return fmt.Errorf("%w: event_type %q must be dot-separated words of letters, digits, '_' or '-'",
			ErrInvalidEvent, e.EventType)
	case uuid.Validate(e.EventID) != nil:
		return fmt.Errorf("%w: event_id %q is not a UUID", ErrInvalidEvent, e.EventID)
	case e.AggregateType == "":
		return fmt.Errorf("%w: aggregate_type is missing", ErrInvalidEvent)
	case uuid.Validate(e.AggregateID) != nil:
		return fmt.Errorf("%w: aggregate_id %q is not a UUID", ErrInvalidEvent, e.AggregateID)
	case !isJSONObject(e.Data):
		return fmt.Errorf("%w: data of event %s is not a JSON object", ErrInvalidEvent, e.EventID)
	case e.OccurredAt.IsZero():
		return fmt.Errorf("%w: occurred_at is missing", ErrInvalidEvent)
	}
	return nil
}

// ValidEventType reports whether s can name an event type: dot-separated
// words of ASCII letters, digits, '_' and '-'.
func ValidEventType(s string) bool {
	return len(s) <= 200 && eventTypePattern.MatchString(s)
}

// Marshal returns the event's JSON form with occurred_at in UTC, RFC 3339
// with fractions of a second.
func (e Event) Marshal() ([]byte, error) {
	e.OccurredAt = e.OccurredAt.UTC()
	raw, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("%w: encode event %s: %v", ErrInvalidEvent, e.EventID, err)
	}
	return raw, nil
}

// DecodeEvent parses and validates an event's JSON form. Any failure wraps
// ErrDecode, so that callers can dead-letter the raw bytes at once.
func DecodeEvent(raw []byte) (Event, error) {
	var ev Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	if err := ev.Validate(); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	return ev, nil
}

func isJSONObject(raw json.RawMessage) bool {
	trimmed := bytes.TrimSpace(raw)
	return len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed)
}
