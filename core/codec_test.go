package core

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const validEvent = `{"event_type":"patient.registered","event_id":"3df766bf-ab8f-43c1-bb04-f07dac9f60fa",` +
	`"aggregate_type":"patient","aggregate_id":"7f9c2e1a-5b3d-4c8e-9a6f-1d2b3c4d5e6f",` +
	`"data":{"name":"Ana","tags":["a","}{"],"n":1.5e3,"ok":true,"x":null},` +
	`"occurred_at":"2026-12-04T16:14:46.978018571Z"}`

// decodeSeeds are inputs on both sides of the fast decoder's limits.
var decodeSeeds = []string{
	validEvent,
	strings.Replace(validEvent, `"Ana"`, `"Ana \"Souza\" \u00e9"`, 1),
	strings.Replace(validEvent, `"patient.registered"`, `"patient\u002eregistered"`, 1),
	strings.Replace(validEvent, `"event_type"`, `"Event_Type"`, 1),
	strings.Replace(validEvent, `{"event_type"`, `{"extra":{"a":[1,2,{"b":"}"}]},"event_type"`, 1),
	strings.Replace(validEvent, `{"event_type"`, `{"extra":tru,"event_type"`, 1),
	strings.Replace(validEvent, `"patient"`, "\"pat\xffient\"", 1),
	strings.Replace(validEvent, `"patient"`, "\"pa\ttient\"", 1),
	strings.Replace(validEvent, `"patient"`, `null`, 1),
	strings.Replace(validEvent, `"Z"}`, `"Z"}`, 1) + `x`,
	strings.Replace(validEvent, `2026-12-04T16:14:46.978018571Z`, `2026-12-04 16:14:46Z`, 1),
	strings.Replace(validEvent, `"data":{`, `"data":{"a":1},"data":{`, 1),
	strings.Replace(validEvent, `"data":{`, `"data":[1],"x":{`, 1),
	`{}`, ` { } `, `{"data":}`, `{"data":{"a":"\"}"}}`, `[]`, `"x"`, ``, `{`, `{"a"`, `{"a":1,}`,
	` ` + validEvent + "\n",
}

// TestDecodeFastMatchesEncodingJSON checks that whenever the fast decoder
// accepts an input, encoding/json gives the same event.
func TestDecodeFastMatchesEncodingJSON(t *testing.T) {
	for _, seed := range decodeSeeds {
		requireSameDecode(t, []byte(seed))
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for _, seed := range decodeSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		requireSameDecode(t, raw)
		ev, err := DecodeEvent(raw)
		requireSameOutcome(t, raw, err)
		if err != nil {
			require.ErrorIs(t, err, ErrDecode, "a decode failure must wrap ErrDecode so that it is dead-lettered")
			require.True(t, reflect.DeepEqual(ev, Event{}), "a decode failure must return the zero event: %#v", ev)
			require.Less(t, len(err.Error()), maxDecodeError,
				"a decode error is logged, so it must not grow with the input: %.400s", err)
			return
		}
		require.NoError(t, ev.Validate(), "a decoded event must be valid")
		require.Equal(t, time.UTC, ev.OccurredAt.Location(), "a decoded event's occurred_at must be in UTC")

		// A handler may publish the event it received, so its JSON form
		// must decode to the same event.
		again, err := ev.Marshal()
		require.NoError(t, err, "a decoded event must marshal")
		decoded, err := DecodeEvent(again)
		require.NoError(t, err, "the JSON form %q of a decoded event must decode", again)
		require.True(t, decoded.OccurredAt.Equal(ev.OccurredAt), "occurred_at changed: %s, then %s",
			ev.OccurredAt, decoded.OccurredAt)
		decoded.OccurredAt = ev.OccurredAt
		require.Equal(t, ev, decoded, "the JSON form %q of a decoded event must decode to the same event", again)
	})
}

func requireSameDecode(t *testing.T, raw []byte) {
	t.Helper()
	fast, ok := decodeFast(raw)
	if !ok {
		return
	}
	var slow Event
	err := json.Unmarshal(raw, &slow)
	require.NoError(t, err, "the fast decoder accepted %q, which encoding/json rejects", raw)
	require.True(t, reflect.DeepEqual(fast, slow), "decoders disagree on %q:\nfast %#v\nslow %#v", raw, fast, slow)
}

// requireSameOutcome checks that DecodeEvent, whose slow path decodes
// into a type of its own to control its errors, fails exactly when
// json.Unmarshal into Event fails or gives an invalid event.
func requireSameOutcome(t *testing.T, raw []byte, decodeErr error) {
	t.Helper()
	var viaJSON Event
	jsonErr := json.Unmarshal(raw, &viaJSON)
	if jsonErr == nil {
		jsonErr = viaJSON.validateFields()
	}
	if jsonErr != nil {
		require.Error(t, decodeErr, "encoding/json rejects %q: %v", raw, jsonErr)
		return
	}
	require.NoError(t, decodeErr, "encoding/json accepts %q", raw)
}

func TestMarshalRoundTrip(t *testing.T) {
	ev, err := NewEvent("patient.registered", "patient", "7f9c2e1a-5b3d-4c8e-9a6f-1d2b3c4d5e6f",
		map[string]string{"name": "Ana <Souza> & \"Filho\"", "ward": "cardiología\n"})
	require.NoError(t, err)
	ev.AggregateType = "patient \"record\" <x>"

	raw, err := ev.Marshal()
	require.NoError(t, err)
	require.True(t, json.Valid(raw), "the JSON form must be valid JSON: %s", raw)

	var viaJSON Event
	require.NoError(t, json.Unmarshal(raw, &viaJSON))
	decoded, err := DecodeEvent(raw)
	require.NoError(t, err)
	require.Equal(t, viaJSON, decoded)
	require.Equal(t, ev.EventID, decoded.EventID)
	require.Equal(t, ev.AggregateType, decoded.AggregateType)
	require.JSONEq(t, string(ev.Data), string(decoded.Data))
	require.True(t, ev.OccurredAt.Equal(decoded.OccurredAt))
	require.Equal(t, time.UTC, decoded.OccurredAt.Location())
}

func TestMarshalRejectsInvalidData(t *testing.T) {
	ev, err := NewEvent("patient.registered", "patient", "7f9c2e1a-5b3d-4c8e-9a6f-1d2b3c4d5e6f", map[string]int{})
	require.NoError(t, err)
	ev.Data = json.RawMessage(`{"a":`)
	_, err = ev.Marshal()
	require.ErrorIs(t, err, ErrInvalidEvent)
}

func TestValidEventType(t *testing.T) {
	cases := map[string]bool{
		"patient.registered": true, "a": true, "a-b_c.D9": true, "x.y.z": true,
		"": false, ".a": false, "a.": false, "a..b": false, "a b": false, "a:b": false, "é": false,
		"dlq": true, strings.Repeat("a", 200): true, strings.Repeat("a", 201): false,
	}
	for input, want := range cases {
		require.Equal(t, want, ValidEventType(input), "ValidEventType(%q)", input)
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	raw := []byte(validEvent)
	for b.Loop() {
		if _, err := DecodeEvent(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalEvent(b *testing.B) {
	raw := []byte(validEvent)
	for b.Loop() {
		var ev Event
		if err := json.Unmarshal(raw, &ev); err != nil {
			b.Fatal(err)
		}
	}
}
