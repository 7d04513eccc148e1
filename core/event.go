package core

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/deadletter/deadletter/internal/redact"
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

// NewEvent returns an event of the given type about one aggregate, with a
// fresh event id, the current UTC time and data encoded as JSON. It returns
// an error wrapping ErrInvalidEvent when data does not encode to a JSON
// object or a field is invalid.
func NewEvent(eventType, aggregateType, aggregateID string, data any) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("%w: encode data of event type %s: %v", ErrInvalidEvent,
			redact.Excerpt(eventType), err)
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
	if err := e.validateFields(); err != nil {
		return err
	}
	if !json.Valid(e.Data) {
		return fmt.Errorf("%w: data of event %s is not valid JSON", ErrInvalidEvent, e.EventID)
	}
	return nil
}

// validateFields checks every field but the validity of Data as JSON, which
// decoding has checked already. Its errors name the invalid field without
// its value, which may hold personal data, except for a short excerpt of
// event_type and event_id, which help to find the event.
func (e Event) validateFields() error {
	switch {
	case e.EventType == "":
		return fmt.Errorf("%w: event_type is missing", ErrInvalidEvent)
	case !ValidEventType(e.EventType):
		return fmt.Errorf("%w: event_type %s must be at most 200 bytes of dot-separated words of letters, "+
			"digits, '_' or '-'", ErrInvalidEvent, redact.Excerpt(e.EventType))
	case e.EventID == "":
		return fmt.Errorf("%w: event_id is missing", ErrInvalidEvent)
	case uuid.Validate(e.EventID) != nil:
		return fmt.Errorf("%w: event_id %s is not a UUID", ErrInvalidEvent, redact.Excerpt(e.EventID))
	case e.AggregateType == "":
		return fmt.Errorf("%w: aggregate_type of event %s is missing", ErrInvalidEvent, e.EventID)
	case e.AggregateID == "":
		return fmt.Errorf("%w: aggregate_id of event %s is missing", ErrInvalidEvent, e.EventID)
	case uuid.Validate(e.AggregateID) != nil:
		return fmt.Errorf("%w: aggregate_id of event %s is not a UUID (%d bytes)", ErrInvalidEvent, e.EventID,
			len(e.AggregateID))
	case !startsObject(e.Data):
		return fmt.Errorf("%w: data of event %s is not a JSON object", ErrInvalidEvent, e.EventID)
	case e.OccurredAt.IsZero():
		return fmt.Errorf("%w: occurred_at of event %s is missing", ErrInvalidEvent, e.EventID)
	case !fitsTimeFormat(e.OccurredAt):
		return fmt.Errorf("%w: occurred_at %s of event %s is outside the years 0000 to 9999 in UTC",
			ErrInvalidEvent, e.OccurredAt.Format(time.RFC3339Nano), e.EventID)
	}
	return nil
}

// ValidEventType reports whether s can name an event type: at most 200
// bytes of dot-separated words of ASCII letters, digits, '_' and '-'. Those
// characters are valid in Redis key names and NATS subjects alike.
func ValidEventType(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	wordStart := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if wordStart {
				return false
			}
			wordStart = true
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			wordStart = false
		default:
			return false
		}
	}
	return !wordStart
}

// Marshal validates the event and returns its JSON form, with occurred_at in
// UTC, RFC 3339 with fractions of a second, and data as given. It returns an
// error wrapping ErrInvalidEvent for an invalid event.
func (e Event) Marshal() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return appendEvent(make([]byte, 0, 160+len(e.Data)), e), nil
}

// DecodeEvent parses and validates an event's JSON form. Any failure wraps
// ErrDecode, so that callers can dead-letter the raw bytes at once. The
// error names the field and what is wrong with it, and quotes no more of
// the input than validation errors do, because it is logged and stored in
// the DLQ entry's error field.
func DecodeEvent(raw []byte) (Event, error) {
	ev, ok := decodeFast(raw)
	if !ok {
		var err error
		if ev, err = decodeJSON(raw); err != nil {
			return Event{}, fmt.Errorf("%w: %v", ErrDecode, err)
		}
	}
	// Both paths have checked that data is valid JSON.
	if err := ev.validateFields(); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	// Parsing keeps the offset that the time was written with, but events
	// are in UTC.
	ev.OccurredAt = ev.OccurredAt.UTC()
	return ev, nil
}

func startsObject(raw json.RawMessage) bool {
	trimmed := bytes.TrimSpace(raw)
	return len(trimmed) > 0 && trimmed[0] == '{'
}
