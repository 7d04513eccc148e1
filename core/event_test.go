package core

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// marker is the personal data planted in a field of a malformed event. It
// is made of letters and digits, so that it also fits a valid event type.
const marker = "PII7anaSouza"

// maxDecodeError bounds the length of a decode error, whatever the size of
// the input: the error is logged and stored in the DLQ entry.
const maxDecodeError = 300

// pad is longer than the excerpt that an error keeps of event_type and
// event_id, so that a marker after it must not show.
var pad = strings.Repeat("x", 80)

// huge is large enough that a copy in an error would be noticed at once.
var huge = strings.Repeat("A", 600<<10)

// replaceField returns validEvent with old, a field as validEvent writes
// it, replaced by value.
func replaceField(t *testing.T, old, value string) []byte {
	t.Helper()
	require.Contains(t, validEvent, old)
	return []byte(strings.Replace(validEvent, old, value, 1))
}

const (
	eventTypeJSON     = `"event_type":"patient.registered"`
	eventIDJSON       = `"event_id":"3df766bf-ab8f-43c1-bb04-f07dac9f60fa"`
	aggregateTypeJSON = `"aggregate_type":"patient"`
	aggregateIDJSON   = `"aggregate_id":"7f9c2e1a-5b3d-4c8e-9a6f-1d2b3c4d5e6f"`
	dataJSON          = `"data":{"name":"Ana",`
	occurredAtJSON    = `"occurred_at":"2026-12-04T16:14:46.978018571Z"`
)

// TestDecodeErrorQuotesNoInput plants a marker in each field of an event,
// in each kind of invalid value, and checks that the decode error names
// the field and its problem, but neither shows the marker nor grows with
// the input.
func TestDecodeErrorQuotesNoInput(t *testing.T) {
	cutShort := []byte(validEvent[:strings.Index(validEvent, `"Ana"`)] + `"` + marker + huge)
	cases := []struct {
		name string
		raw  []byte
		// want is a part of the error that names the field and problem.
		want string
	}{
		{"EventTypeWithSpace", replaceField(t, eventTypeJSON, `"event_type":"patient.registered `+pad+marker+`"`),
			`event_type "patient.registered xxx`},
		{"EventTypeTooLong", replaceField(t, eventTypeJSON, `"event_type":"`+huge+marker+`"`),
			`"... (614412 bytes) must be at most 200 bytes`},
		{"EventTypeControlCharacters", replaceField(t, eventTypeJSON,
			`"event_type":"`+strings.Repeat(`\u0001`, 70)+marker+`"`), `event_type "\x01\x01`},
		{"EventTypeArray", replaceField(t, eventTypeJSON, `"event_type":["`+marker+`"]`),
			"event_type must be a JSON string, not array"},
		{"EventTypeObjectWithOtherCase", replaceField(t, eventTypeJSON, `"EVENT_TYPE":{"`+marker+`":1}`),
			"event_type must be a JSON string, not object"},
		{"EventTypeInvalidEscape", replaceField(t, eventTypeJSON, `"event_type":"\uZZZZ`+marker+`"`),
			"invalid JSON near byte offset"},
		{"EventTypeMissing", replaceField(t, eventTypeJSON, `"type":"`+marker+`"`), "event_type is missing"},
		{"EventIDNotUUID", replaceField(t, eventIDJSON, `"event_id":"`+pad+marker+`"`),
			`event_id "xxxx`},
		{"EventIDHuge", replaceField(t, eventIDJSON, `"event_id":"`+pad+marker+huge+`"`),
			`"... (614492 bytes) is not a UUID`},
		{"EventIDNumber", replaceField(t, eventIDJSON, `"event_id":123`), "event_id must be a JSON string, not number"},
		{"AggregateTypeArray", replaceField(t, aggregateTypeJSON, `"aggregate_type":["`+marker+`"]`),
			"aggregate_type must be a JSON string, not array"},
		{"AggregateTypeEmpty", replaceField(t, aggregateTypeJSON, `"aggregate_type":""`),
			"aggregate_type of event 3df766bf-ab8f-43c1-bb04-f07dac9f60fa is missing"},
		{"AggregateIDPersonal", replaceField(t, aggregateIDJSON, `"aggregate_id":"`+marker+`-ana@example.org"`),
			"aggregate_id of event 3df766bf-ab8f-43c1-bb04-f07dac9f60fa is not a UUID (28 bytes)"},
		{"AggregateIDHuge", replaceField(t, aggregateIDJSON, `"aggregate_id":"`+marker+huge+`"`),
			"aggregate_id of event 3df766bf-ab8f-43c1-bb04-f07dac9f60fa is not a UUID (614412 bytes)"},
		{"AggregateIDBool", replaceField(t, aggregateIDJSON, `"aggregate_id":true`),
			"aggregate_id must be a JSON string, not bool"},
		{"DataString", replaceField(t, dataJSON, `"data":"`+marker+`","x":{`), "is not a JSON object"},
		{"DataArray", replaceField(t, dataJSON, `"data":["`+marker+`"],"x":{`), "is not a JSON object"},
		{"DataBareWord", replaceField(t, dataJSON, `"data":{"name":`+marker+`,`),
			"invalid character 'P' looking for beginning of value"},
		{"DataCutShort", cutShort, fmt.Sprintf("invalid JSON near byte offset %d: unexpected end of JSON input",
			len(cutShort))},
		{"OccurredAtWord", replaceField(t, occurredAtJSON, `"occurred_at":"`+marker+`"`),
			"occurred_at is not an RFC 3339 time such as 2026-01-02T15:04:05.5Z (12 bytes)"},
		{"OccurredAtExtraText", replaceField(t, occurredAtJSON, `"occurred_at":"2026-12-04T16:14:46Z`+marker+`"`),
			"occurred_at is not an RFC 3339 time such as 2026-01-02T15:04:05.5Z (32 bytes)"},
		{"OccurredAtMonthOutOfRange", replaceField(t, occurredAtJSON, `"occurred_at":"2026-13-04T16:14:46Z"`),
			"occurred_at is not an RFC 3339 time: month out of range (20 bytes)"},
		{"OccurredAtHuge", replaceField(t, occurredAtJSON, `"occurred_at":"`+marker+huge+`"`),
			"occurred_at is not an RFC 3339 time such as 2026-01-02T15:04:05.5Z (614412 bytes)"},
		{"OccurredAtObject", replaceField(t, occurredAtJSON, `"occurred_at":{"`+marker+`":1}`),
			"occurred_at must be a JSON string with an RFC 3339 time"},
		{"OccurredAtEscaped", replaceField(t, occurredAtJSON, `"occurred_at":"\u0032026-12-04T16:14:46Z`+marker+`"`),
			"occurred_at is not an RFC 3339 time"},
		{"UnknownKeyBareWord", replaceField(t, eventTypeJSON, `"x":`+marker+`,`+eventTypeJSON),
			"invalid JSON near byte offset"},
		{"BareWord", []byte(marker + huge), "invalid character 'P' looking for beginning of value"},
		{"TopLevelString", []byte(`"` + marker + huge + `"`), "the event must be a JSON object, not string"},
		{"TopLevelArray", []byte(`["` + marker + `"]`), "the event must be a JSON object, not array"},
		{"TrailingText", []byte(validEvent + marker), "invalid JSON near byte offset"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeEvent(c.raw)
			require.ErrorIs(t, err, ErrDecode)
			message := err.Error()
			require.NotContains(t, message, marker, "the decode error must not show the field's value")
			require.Less(t, len(message), maxDecodeError, "the decode error must stay short: %.400s", message)
			require.Contains(t, message, c.want)
		})
	}
}

// TestValidateNamesField checks the errors of an invalid event that a
// service builds itself, before publishing.
func TestValidateNamesField(t *testing.T) {
	ev, err := NewEvent("patient.registered", "patient", "7f9c2e1a-5b3d-4c8e-9a6f-1d2b3c4d5e6f", map[string]int{})
	require.NoError(t, err)

	t.Run("ShowsShortEventType", func(t *testing.T) {
		invalid := ev
		invalid.EventType = "patient registered"
		require.ErrorContains(t, invalid.Validate(), `event_type "patient registered" must be`)
	})
	t.Run("CutsLongEventType", func(t *testing.T) {
		invalid := ev
		invalid.EventType = strings.Repeat("a", 64) + " " + marker
		err := invalid.Validate()
		require.ErrorIs(t, err, ErrInvalidEvent)
		require.NotContains(t, err.Error(), marker)
		require.ErrorContains(t, err, `event_type "`+strings.Repeat("a", 64)+`"... (77 bytes)`)
	})
	t.Run("HidesAggregateID", func(t *testing.T) {
		invalid := ev
		invalid.AggregateID = marker
		err := invalid.Validate()
		require.ErrorIs(t, err, ErrInvalidEvent)
		require.NotContains(t, err.Error(), marker)
		require.ErrorContains(t, err, "aggregate_id of event "+ev.EventID+" is not a UUID (12 bytes)")
	})
	t.Run("CutsEventTypeOfNewEvent", func(t *testing.T) {
		_, err := NewEvent(pad+marker, "patient", ev.AggregateID, map[string]any{"f": func() {}})
		require.ErrorIs(t, err, ErrInvalidEvent)
		require.NotContains(t, err.Error(), marker)
	})
}
