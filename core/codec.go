package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/deadletter/deadletter/internal/redact"
)

// The event's JSON form is encoded and decoded by hand on the hot path:
// encoding/json costs about a quarter of the CPU of handling an event, most
// of it in reflection and in growing the stacks of the short-lived
// goroutines that handle messages. The hand-written decoder takes only the
// common form: the six keys spelled exactly, strings without escapes that
// need decoding, valid UTF-8. Anything else goes to encoding/json, so the
// result always equals what json.Unmarshal would give. Only the errors
// differ, because decodeJSON replaces them with ones that quote none of
// the input.

// appendEvent appends the JSON form of e to dst. Data is appended as it is;
// the caller has checked that it is valid JSON.
func appendEvent(dst []byte, e Event) []byte {
	dst = append(dst, `{"event_type":`...)
	dst = appendString(dst, e.EventType)
	dst = append(dst, `,"event_id":`...)
	dst = appendString(dst, e.EventID)
	dst = append(dst, `,"aggregate_type":`...)
	dst = appendString(dst, e.AggregateType)
	dst = append(dst, `,"aggregate_id":`...)
	dst = appendString(dst, e.AggregateID)
	dst = append(dst, `,"data":`...)
	dst = append(dst, bytes.TrimSpace(e.Data)...)
	dst = append(dst, `,"occurred_at":"`...)
	dst = e.OccurredAt.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, `"}`...)
}

// appendString appends s as a JSON string. It escapes what JSON requires
// and, as encoding/json does, the HTML characters <, > and &; invalid UTF-8
// becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	if !needsEscape(s) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	quoted, _ := json.Marshal(s)
	return append(dst, quoted...)
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// decodeFast parses the common form of an event. It reports false when the
// input is not in that form, and the caller then uses encoding/json.
func decodeFast(raw []byte) (Event, bool) {
	d := fastDecoder{raw: raw}
	var ev Event
	if !d.consume('{') {
		return Event{}, false
	}
	if d.consume('}') {
		return ev, d.end()
	}
	for {
		key, ok := d.plainString()
		if !ok || !d.consume(':') {
			return Event{}, false
		}
		if !d.field(&ev, key) {
			return Event{}, false
		}
		if d.consume(',') {
			continue
		}
		if d.consume('}') {
			return ev, d.end()
		}
		return Event{}, false
	}
}

type fastDecoder struct {
	raw []byte
	pos int
}

// field decodes the value of key into ev.
func (d *fastDecoder) field(ev *Event, key string) bool {
	var target *string
	switch key {
	case "event_type":
		target = &ev.EventType
	case "event_id":
		target = &ev.EventID
	case "aggregate_type":
		target = &ev.AggregateType
	case "aggregate_id":
		target = &ev.AggregateID
	case "data":
		return d.data(ev)
	case "occurred_at":
		return d.time(&ev.OccurredAt)
	default:
		// encoding/json matches keys without regard to case, so a key that
		// differs from a known one only in case must take the slow path.
		for _, known := range eventFields {
			if strings.EqualFold(key, known) {
				return false
			}
		}
		d.space()
		start := d.pos
		return d.skipValue() && json.Valid(d.raw[start:d.pos])
	}
	value, ok := d.plainString()
	*target = value
	return ok
}

func (d *fastDecoder) data(ev *Event) bool {
	d.space()
	start := d.pos
	if !d.skipValue() {
		return false
	}
	value := d.raw[start:d.pos]
	if !json.Valid(value) {
		return false
	}
	ev.Data = append(json.RawMessage(nil), value...)
	return true
}

// time parses a time with the method encoding/json uses, so that both paths
// accept the same forms.
func (d *fastDecoder) time(t *time.Time) bool {
	d.space()
	start := d.pos
	if _, ok := d.plainString(); !ok {
		return false
	}
	return t.UnmarshalJSON(d.raw[start:d.pos]) == nil
}

// plainString reads a string that has no escapes, no control characters and
// only valid UTF-8.
func (d *fastDecoder) plainString() (string, bool) {
	if !d.consume('"') {
		return "", false
	}
	start := d.pos
	ascii := true
	for ; d.pos < len(d.raw); d.pos++ {
		c := d.raw[d.pos]
		switch {
		case c == '"':
			s := d.raw[start:d.pos]
			d.pos++
			if !ascii && !utf8.Valid(s) {
				return "", false
			}
			return string(s), true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// skipValue moves past one JSON value, tracking nesting and strings without
// checking the value in full; data is checked with json.Valid afterwards.
func (d *fastDecoder) skipValue() bool {
	d.space()
	depth := 0
	for d.pos < len(d.raw) {
		c := d.raw[d.pos]
		switch {
		case c == '"':
			if !d.skipString() {
				return false
			}
			if depth == 0 {
				return true
			}
			continue
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth == 0 {
				return false
			}
			depth--
			if depth == 0 {
				d.pos++
				return true
			}
		case depth == 0 && (c == ',' || c == ':'):
			return d.pos > 0
		}
		d.pos++
		if depth == 0 && d.pos < len(d.raw) && isDelimiter(d.raw[d.pos]) {
			return true
		}
	}
	return depth == 0 && d.pos == len(d.raw)
}

func isDelimiter(c byte) bool {
	return c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

func (d *fastDecoder) skipString() bool {
	d.pos++ // opening quote
	for d.pos < len(d.raw) {
		switch d.raw[d.pos] {
		case '\\':
			d.pos += 2
		case '"':
			d.pos++
			return true
		default:
			d.pos++
		}
	}
	return false
}

func (d *fastDecoder) consume(c byte) bool {
	d.space()
	if d.pos < len(d.raw) && d.raw[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

func (d *fastDecoder) space() {
	for d.pos < len(d.raw) {
		switch d.raw[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// end reports whether only white space follows.
func (d *fastDecoder) end() bool {
	d.space()
	return d.pos == len(d.raw)
}

// eventJSON is Event as encoding/json decodes it, with occurred_at of a
// type whose error quotes none of the input.
type eventJSON struct {
	EventType     string          `json:"event_type"`
	EventID       string          `json:"event_id"`
	AggregateType string          `json:"aggregate_type"`
	AggregateID   string          `json:"aggregate_id"`
	Data          json.RawMessage `json:"data"`
	OccurredAt    occurredAt      `json:"occurred_at"`
}

// occurredAt decodes as time.Time does. Its error only states what is wrong,
// because a time.ParseError quotes the whole value, however long.
type occurredAt struct{ time time.Time }

// occurredAtError is the error of occurredAt.UnmarshalJSON.
type occurredAtError struct{ problem string }

func (e *occurredAtError) Error() string { return e.problem }

func (t *occurredAt) UnmarshalJSON(raw []byte) error {
	if err := t.time.UnmarshalJSON(raw); err != nil {
		return &occurredAtError{problem: describeTimeError(raw, err)}
	}
	return nil
}

// describeTimeError returns what is wrong with raw, an occurred_at value
// that time.Time.UnmarshalJSON rejected with err. It keeps the reason of a
// time.ParseError only when the reason quotes nothing, as "month out of
// range" does.
func describeTimeError(raw []byte, err error) string {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "occurred_at must be a JSON string with an RFC 3339 time such as 2026-01-02T15:04:05.5Z"
	}
	size := len(raw) - len(`""`)
	var parseErr *time.ParseError
	if errors.As(err, &parseErr) {
		reason := strings.TrimPrefix(parseErr.Message, ": ")
		if reason != "" && len(reason) <= 40 && !strings.ContainsAny(reason, `"'`+"`") {
			return fmt.Sprintf("occurred_at is not an RFC 3339 time: %s (%d bytes)", reason, size)
		}
	}
	return fmt.Sprintf("occurred_at is not an RFC 3339 time such as 2026-01-02T15:04:05.5Z (%d bytes)", size)
}

// decodeJSON decodes raw with encoding/json, for the forms that decodeFast
// does not take. Its error names the field and the problem but quotes none
// of the input.
func decodeJSON(raw []byte) (Event, error) {
	var wire eventJSON
	if err := json.Unmarshal(raw, &wire); err != nil {
		return Event{}, errors.New(describeJSONError(err))
	}
	return Event{
		EventType:     wire.EventType,
		EventID:       wire.EventID,
		AggregateType: wire.AggregateType,
		AggregateID:   wire.AggregateID,
		Data:          wire.Data,
		OccurredAt:    wire.OccurredAt.time,
	}, nil
}

// eventFields are the JSON names of the event's fields.
var eventFields = []string{"event_type", "event_id", "aggregate_type", "aggregate_id", "data", "occurred_at"}

// describeJSONError returns what is wrong according to err, an error of
// json.Unmarshal into eventJSON, naming the event's field when it can.
func describeJSONError(err error) string {
	var (
		timeErr *occurredAtError
		typeErr *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &timeErr):
		return timeErr.problem
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return "the event must be a JSON object, not " + redact.JSONKind(typeErr.Value)
	case errors.As(err, &typeErr):
		// Only the string fields can mismatch, because data takes any
		// value and occurred_at reports its own error.
		if field := eventField(typeErr.Field); field != "" {
			return fmt.Sprintf("%s must be a JSON string, not %s", field, redact.JSONKind(typeErr.Value))
		}
	}
	return redact.JSONError(err)
}

// eventField returns the field of the event that name, the Field of a
// json.UnmarshalTypeError, matches without regard to case, as
// encoding/json matches keys. It returns "" for any other name, because a
// name that matches no field may come from the input.
func eventField(name string) string {
	name = strings.TrimPrefix(name, "/")
	for _, field := range eventFields {
		if strings.EqualFold(name, field) {
			return field
		}
	}
	return ""
}
