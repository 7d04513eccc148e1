package core

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TimeFormat is the layout of every time deadletter writes: UTC, RFC 3339
// with microseconds, which keeps a fraction even at a whole second.
const TimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// Names of the flat fields of a dead letter entry. The first eight are
// always present; the rest are written when known.
const (
	FieldEventData     = "event_data"
	FieldHandler       = "handler"
	FieldError         = "error"
	FieldFailedAt      = "failed_at"
	FieldEventType     = "event_type"
	FieldEventID       = "event_id"
	FieldAggregateType = "aggregate_type"
	FieldAggregateID   = "aggregate_id"
	FieldAttempts      = "attempts"
	FieldFirstFailedAt = "first_failed_at"
	FieldErrorType     = "error_type"
	FieldSourceStream  = "source_stream"
	FieldSourceID      = "source_id"
	FieldReplayCount   = "replay_count"
	FieldReplayedAt    = "replayed_at"
)

// RequiredFields lists the fields every dead letter entry has.
var RequiredFields = []string{
	FieldEventData, FieldHandler, FieldError, FieldFailedAt,
	FieldEventType, FieldEventID, FieldAggregateType, FieldAggregateID,
}

// Entry is one event in the dead letter queue: the event as it was received,
// the handler that gave up on it and why.
type Entry struct {
	// ID is the entry's id in the DLQ, assigned by the adapter.
	ID string

	// EventData is the original event's JSON form, byte for byte, or the
	// raw message when it could not be decoded.
	EventData []byte

	Handler string
	Error   string

	// FailedAt is when the entry was written.
	FailedAt time.Time

	// The event's identity, copied from EventData. They are empty when the
	// message could not be decoded.
	EventType     string
	EventID       string
	AggregateType string
	AggregateID   string

	// Attempts counts the handler's attempts, including the last.
	Attempts int

	// FirstFailedAt is when the first attempt failed; zero when unknown.
	FirstFailedAt time.Time

	ErrorType ErrorType

	// SourceStream and SourceID record where the event was read from: the
	// stream or subject and the broker's id for the message.
	SourceStream string
	SourceID     string

	// ReplayCount counts how often the event had been replayed from the DLQ
	// before this failure.
	ReplayCount int

	// ReplayedAt is when the entry was replayed; set only on entries in the
	// replayed stream.
	ReplayedAt time.Time
}

// Fields returns the entry as ordered field and value pairs, the required
// fields first. Optional fields that are unknown are left out.
func (e Entry) Fields() []string {
	fields := []string{
		FieldEventData, string(e.EventData),
		FieldHandler, e.Handler,
		FieldError, e.Error,
		FieldFailedAt, FormatTime(e.FailedAt),
		FieldEventType, e.EventType,
		FieldEventID, e.EventID,
		FieldAggregateType, e.AggregateType,
		FieldAggregateID, e.AggregateID,
		FieldAttempts, strconv.Itoa(e.Attempts),
	}
	if !e.FirstFailedAt.IsZero() {
		fields = append(fields, FieldFirstFailedAt, FormatTime(e.FirstFailedAt))
	}
	if e.ErrorType != "" {
		fields = append(fields, FieldErrorType, string(e.ErrorType))
	}
	if e.SourceStream != "" {
		fields = append(fields, FieldSourceStream, e.SourceStream)
	}
	if e.SourceID != "" {
		fields = append(fields, FieldSourceID, e.SourceID)
	}
	fields = append(fields, FieldReplayCount, strconv.Itoa(e.ReplayCount))
	if !e.ReplayedAt.IsZero() {
		fields = append(fields, FieldReplayedAt, FormatTime(e.ReplayedAt))
	}
	return fields
}

// ParseEntry rebuilds an entry from its fields, as read back from a broker.
// It always returns the entry as far as the fields allow, so that a
// malformed entry can still be listed and deleted. A required field that is
// missing stays empty and a malformed time or count stays zero; the error
// then names the first such field.
func ParseEntry(id string, fields map[string]string) (Entry, error) {
	e := Entry{
		ID:            id,
		EventData:     []byte(fields[FieldEventData]),
		Handler:       fields[FieldHandler],
		Error:         fields[FieldError],
		EventType:     fields[FieldEventType],
		EventID:       fields[FieldEventID],
		AggregateType: fields[FieldAggregateType],
		AggregateID:   fields[FieldAggregateID],
		ErrorType:     ErrorType(fields[FieldErrorType]),
		SourceStream:  fields[FieldSourceStream],
		SourceID:      fields[FieldSourceID],
	}

	var errs []error
	for _, name := range RequiredFields {
		if _, ok := fields[name]; !ok {
			errs = append(errs, fmt.Errorf("parse dead letter entry %s: field %s is missing", id, name))
		}
	}
	var err error
	if e.FailedAt, err = parseTimeField(id, fields, FieldFailedAt); err != nil {
		errs = append(errs, err)
	}
	if e.FirstFailedAt, err = parseTimeField(id, fields, FieldFirstFailedAt); err != nil {
		errs = append(errs, err)
	}
	if e.ReplayedAt, err = parseTimeField(id, fields, FieldReplayedAt); err != nil {
		errs = append(errs, err)
	}
	if e.Attempts, err = parseIntField(id, fields, FieldAttempts); err != nil {
		errs = append(errs, err)
	}
	if e.ReplayCount, err = parseIntField(id, fields, FieldReplayCount); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return e, errs[0]
	}
	return e, nil
}

// FormatTime formats t in UTC with TimeFormat, or returns "" for the zero
// time.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeFormat)
}

// parseTimeField parses the time in field name. Its errors give the
// value's length, not the value, which may be anything a broker returned.
func parseTimeField(id string, fields map[string]string, name string) (time.Time, error) {
	value := fields[name]
	if value == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, value)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse dead letter entry %s: field %s is not an RFC 3339 time such as "+
			"2026-01-02T15:04:05.000000Z (%d bytes)", id, name, len(value))
	}
	if !fitsTimeFormat(t) {
		return time.Time{}, fmt.Errorf("parse dead letter entry %s: field %s: %s is outside the years "+
			"0000 to 9999 in UTC", id, name, t.Format(time.RFC3339Nano))
	}
	return t.UTC(), nil
}

// fitsTimeFormat reports whether t in UTC has a year of four digits, as RFC
// 3339 requires. A time such as 9999-12-31T23:00:00-05:00 parses but is in
// the year 10000 in UTC, so FormatTime would write a value that no RFC 3339
// parser reads back.
func fitsTimeFormat(t time.Time) bool {
	year := t.UTC().Year()
	return year >= 0 && year <= 9999
}

// parseIntField parses the decimal integer in field name. Like
// parseTimeField, it gives the value's length in its errors.
func parseIntField(id string, fields map[string]string, name string) (int, error) {
	value := fields[name]
	if value == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(value)
	// Atoi reports a range error as soon as the digits overflow, even when
	// a character that is not a digit follows.
	if errors.Is(err, strconv.ErrRange) && strings.TrimLeft(value[1:], "0123456789") == "" {
		return 0, fmt.Errorf("parse dead letter entry %s: field %s is out of range for an int (%d bytes)",
			id, name, len(value))
	}
	if err != nil {
		return 0, fmt.Errorf("parse dead letter entry %s: field %s is not a decimal integer (%d bytes)",
			id, name, len(value))
	}
	return n, nil
}
