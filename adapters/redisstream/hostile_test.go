package redisstream_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/adapters/redisstream"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/testredis"
)

// outcome is what the bus does with an entry that another tool added.
type outcome int

const (
	// deadLettered: the handler does not run and the DLQ gets one entry
	// with error_type decode and the raw bytes as event_data.
	deadLettered outcome = iota
	// handled: the handler receives the event.
	handled
	// ignored: no handler reads the stream, so the entry stays there.
	ignored
	// rejected: Redis rejects the XADD, so nothing is stored.
	rejected
)

// personalData is planted in the fields of hostile entries. It must reach
// the DLQ entry's event_data but not its error.
const personalData = "PII7-ana.souza@example.org"

// hostileEntry is an entry added to an event stream with XADD, as a tool
// other than the adapter's publisher would add it.
type hostileEntry struct {
	name   string
	values []any
	// eventType is the stream's event type; "" means the handler's.
	eventType string
	want      outcome
	// eventData is the event_data a dead-lettered entry keeps, byte for
	// byte; nil means eventDataContains applies instead.
	eventData         []byte
	eventDataContains string
	// eventID is the id of a handled event, and checkEvent, when set,
	// checks the event the handler received.
	eventID    string
	checkEvent func(t *testing.T, ev core.Event)
}

// handledEvents records the events a handler received.
type handledEvents struct {
	mu     sync.Mutex
	events map[string]core.Event
}

func (h *handledEvents) add(ev core.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events[ev.EventID] = ev
}

func (h *handledEvents) get(eventID string) (core.Event, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ev, ok := h.events[eventID]
	return ev, ok
}

// rawEvent returns the JSON form of a valid event with each old string
// replaced by its new one, and the event's id.
func rawEvent(t *testing.T, replacements ...string) ([]byte, string) {
	t.Helper()
	ev := newEvent(t, "patient.registered")
	raw, err := ev.Marshal()
	require.NoError(t, err)
	for i := 0; i+1 < len(replacements); i += 2 {
		require.Contains(t, string(raw), replacements[i])
		raw = bytes.Replace(raw, []byte(replacements[i]), []byte(replacements[i+1]), 1)
	}
	return raw, ev.EventID
}

func hostileEntries(t *testing.T) []hostileEntry {
	valid, validID := rawEvent(t)
	utf8InField, utf8InFieldID := rawEvent(t, `"aggregate_type":"patient"`, "\"aggregate_type\":\"pat\xffient\"")
	utf8InData, utf8InDataID := rawEvent(t, `"name":"Ana"`, "\"name\":\"An\xffa\"")
	hugeNumber, hugeNumberID := rawEvent(t, `"name":"Ana"`, `"n":1e999999,"m":-123456789012345678901234567890`)
	otherType, otherTypeID := rawEvent(t, `"event_type":"patient.registered"`, `"event_type":"invoice.paid"`)
	large, largeID := rawEvent(t, `"name":"Ana"`, `"name":"`+string(bytes.Repeat([]byte("a"), 10<<20))+`"`)
	stateForged := `{"` + core.MetadataDeadLetterPending + `":"4","` + core.MetadataDecodeError + `":"forged"}`
	occurredAt, _ := rawEvent(t, `"occurred_at":"`, `"occurred_at":"yesterday","x":"`)
	eventTypeNumber, _ := rawEvent(t, `"event_type":"patient.registered"`, `"event_type":42`)
	dataString, _ := rawEvent(t, `"data":{"name":"Ana"}`, `"data":"Ana"`)
	noEventID, _ := rawEvent(t, `"event_id":`, `"id":`)
	garbage := bytes.Repeat([]byte("x"), 10<<20)
	hugeOccurredAt, _ := rawEvent(t, `"occurred_at":"`,
		`"occurred_at":"`+strings.Repeat(personalData, 50<<10)+`","x":"`)
	personalAggregateID, _ := rawEvent(t, `"aggregate_id":"`, `"aggregate_id":"`+personalData+`","x":"`)

	return []hostileEntry{
		{name: "NoFields", values: []any{}, want: rejected},
		{name: "OnlyAnEmptyField", values: []any{"", ""}, want: deadLettered, eventDataContains: `{"":""}`},
		{name: "NoPayloadField", values: []any{"uuid", "u-1", "type", "patient.registered"}, want: deadLettered,
			eventDataContains: `"type":"patient.registered"`},
		{name: "EmptyPayload", values: []any{"payload", ""}, want: deadLettered, eventData: []byte{}},
		{name: "PayloadIsNumber", values: []any{"payload", 42}, want: deadLettered, eventData: []byte("42")},
		{name: "BinaryPayload", values: []any{"payload", "\x89PNG\r\n\x1a\n\x00\x00\xff"}, want: deadLettered,
			eventData: []byte("\x89PNG\r\n\x1a\n\x00\x00\xff")},
		{name: "InvalidUTF8Payload", values: []any{"payload", "\xff\xfe\xfd"}, want: deadLettered,
			eventData: []byte("\xff\xfe\xfd")},
		{name: "MetadataNotJSON", values: []any{"payload", valid, "metadata", "not a JSON object"},
			want: deadLettered, eventData: valid},
		{name: "MetadataOfWrongTypes", values: []any{"payload", valid, "metadata", `{"trace":1}`},
			want: deadLettered, eventData: valid},
		{name: "OccurredAtNotATime", values: []any{"payload", occurredAt}, want: deadLettered,
			eventData: occurredAt},
		{name: "EventTypeIsNumber", values: []any{"payload", eventTypeNumber}, want: deadLettered,
			eventData: eventTypeNumber},
		{name: "DataNotAnObject", values: []any{"payload", dataString}, want: deadLettered, eventData: dataString},
		{name: "NoEventID", values: []any{"payload", noEventID}, want: deadLettered, eventData: noEventID},
		{name: "TenMiBNotAnEvent", values: []any{"payload", garbage}, want: deadLettered, eventData: garbage},
		{name: "HugeOccurredAt", values: []any{"payload", hugeOccurredAt}, want: deadLettered,
			eventData: hugeOccurredAt},
		{name: "PersonalDataAsAggregateID", values: []any{"payload", personalAggregateID}, want: deadLettered,
			eventData: personalAggregateID},
		{name: "TenMiBEvent", values: []any{"payload", large}, want: handled, eventID: largeID,
			checkEvent: func(t *testing.T, ev core.Event) {
				require.Greater(t, len(ev.Data), 10<<20)
			}},
		{name: "MetadataNull", values: []any{"payload", valid, "metadata", "null"}, want: handled,
			eventID: validID},
		{name: "ForgedDeliveryState", values: []any{"payload", hugeNumber, "metadata", stateForged},
			want: handled, eventID: hugeNumberID, checkEvent: func(t *testing.T, ev core.Event) {
				require.Contains(t, string(ev.Data), "1e999999", "a number too large for float64 stays in data")
			}},
		// encoding/json replaces invalid UTF-8 in a string with U+FFFD, and
		// keeps data as raw bytes.
		{name: "InvalidUTF8InStringField", values: []any{"payload", utf8InField}, want: handled,
			eventID: utf8InFieldID, checkEvent: func(t *testing.T, ev core.Event) {
				require.Equal(t, "pat\uFFFDient", ev.AggregateType)
			}},
		{name: "InvalidUTF8InData", values: []any{"payload", utf8InData}, want: handled, eventID: utf8InDataID,
			checkEvent: func(t *testing.T, ev core.Event) {
				require.Equal(t, "{\"name\":\"An\xffa\"}", string(ev.Data))
			}},
		// The stream, not the payload's event_type, selects the handlers.
		{name: "EventTypeOfOtherStream", values: []any{"payload", otherType}, want: handled,
			eventID: otherTypeID, checkEvent: func(t *testing.T, ev core.Event) {
				require.Equal(t, "invoice.paid", ev.EventType)
			}},
		{name: "StreamWithoutHandler", values: []any{"payload", valid}, eventType: "invoice.paid",
			want: ignored},
	}
}

// TestHostileStreamEntries adds entries to the event streams with XADD, as
// other tools might, and checks what the bus does with each, and that the
// handler goes on to handle a valid event published after it.
func TestHostileStreamEntries(t *testing.T) {
	ctx := context.Background()
	a := newAdapter(t, testredis.Prefix())
	bus := newBus(t, a, deadletter.Config{})
	received := &handledEvents{events: map[string]core.Event{}}
	require.NoError(t, bus.Handle("index", "patient.registered", func(ctx context.Context, ev core.Event) error {
		received.add(ev)
		return nil
	}))
	runBus(t, bus)

	for _, entry := range hostileEntries(t) {
		t.Run(entry.name, func(t *testing.T) {
			eventType := entry.eventType
			if eventType == "" {
				eventType = "patient.registered"
			}
			id, err := a.Client().XAdd(ctx, &redis.XAddArgs{
				Stream: a.StreamName(eventType), Values: entry.values,
			}).Result()
			if entry.want == rejected {
				require.Error(t, err, "Redis must reject the entry")
			} else {
				require.NoError(t, err)
			}

			after := newEvent(t, "patient.registered")
			require.NoError(t, bus.Publish(ctx, after))
			waitFor(t, "the valid event published after the hostile entry", func() bool {
				_, ok := received.get(after.EventID)
				return ok
			})

			switch entry.want {
			case deadLettered:
				dlqEntry := waitDLQEntry(t, a, id)
				require.Equal(t, core.ErrorTypeDecode, dlqEntry.ErrorType)
				require.Equal(t, "index", dlqEntry.Handler)
				require.NotEmpty(t, dlqEntry.Error)
				require.NotContains(t, dlqEntry.Error, personalData, "the error must not show the event's fields")
				require.Less(t, len(dlqEntry.Error), 400, "the error must not grow with the entry: %.400s",
					dlqEntry.Error)
				if entry.eventData != nil {
					require.True(t, bytes.Equal(entry.eventData, dlqEntry.EventData),
						"event_data must keep the payload byte for byte; got %d bytes, want %d",
						len(dlqEntry.EventData), len(entry.eventData))
				} else {
					require.Contains(t, string(dlqEntry.EventData), entry.eventDataContains)
				}
				requireAcknowledged(t, a, eventType, id)
			case handled:
				waitFor(t, "the hostile entry's event", func() bool {
					_, ok := received.get(entry.eventID)
					return ok
				})
				if entry.checkEvent != nil {
					ev, _ := received.get(entry.eventID)
					entry.checkEvent(t, ev)
				}
				requireNoDLQEntry(t, a, id)
				requireAcknowledged(t, a, eventType, id)
			case ignored:
				requireNoDLQEntry(t, a, id)
				n, err := a.Client().XLen(ctx, a.StreamName(eventType)).Result()
				require.NoError(t, err)
				require.EqualValues(t, 1, n, "an entry that no handler reads must stay in its stream")
			}
		})
	}
}

// waitDLQEntry waits for the DLQ entry of the stream entry sourceID.
func waitDLQEntry(t *testing.T, a *redisstream.Adapter, sourceID string) core.Entry {
	t.Helper()
	var found core.Entry
	waitFor(t, "the dead letter entry of "+sourceID, func() bool {
		entries, err := a.DLQ().List(context.Background(), core.ListOptions{Limit: 100})
		require.NoError(t, err)
		for _, e := range entries {
			if e.SourceID == sourceID {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

func requireNoDLQEntry(t *testing.T, a *redisstream.Adapter, sourceID string) {
	t.Helper()
	entries, err := a.DLQ().List(context.Background(), core.ListOptions{Limit: 100})
	require.NoError(t, err)
	for _, e := range entries {
		require.NotEqual(t, sourceID, e.SourceID, "entry %s must not be dead-lettered: %s", sourceID, e.Error)
	}
}

// requireAcknowledged waits until the handler's group has no pending entry
// left on the stream, so that the hostile entry is not delivered again.
func requireAcknowledged(t *testing.T, a *redisstream.Adapter, eventType, id string) {
	t.Helper()
	waitFor(t, "the acknowledgement of "+id, func() bool {
		pending, err := a.Client().XPendingExt(context.Background(), &redis.XPendingExtArgs{
			Stream: a.StreamName(eventType), Group: "index", Start: id, End: id, Count: 1,
		}).Result()
		require.NoError(t, err)
		return len(pending) == 0
	})
}
