package nats

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	deadletter "github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/core"
)

// outcome is what the bus does with a message that another tool published.
type outcome int

const (
	// deadLettered: the handler does not run and the DLQ gets one entry
	// with error_type decode and the raw data as event_data.
	deadLettered outcome = iota
	// handled: the handler receives the event.
	handled
	// ignored: no handler consumes the subject, so the message stays in
	// the events stream.
	ignored
	// rejected: the client or the server rejects the publish, so nothing
	// is stored.
	rejected
)

// hostileMessage is a message published with nats.go on an event subject,
// as a tool other than the adapter's publisher would publish it.
type hostileMessage struct {
	name   string
	header nats.Header
	data   []byte
	// eventType is the subject's event type; "" means the handler's.
	eventType string
	want      outcome
	// dataCut is true when the message is too large for its DLQ entry to
	// keep the whole data, so the entry keeps its start.
	dataCut bool
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
	ev := newTestEvent(t, "patient.registered")
	raw, err := ev.Marshal()
	require.NoError(t, err)
	for i := 0; i+1 < len(replacements); i += 2 {
		require.Contains(t, string(raw), replacements[i])
		raw = bytes.Replace(raw, []byte(replacements[i]), []byte(replacements[i+1]), 1)
	}
	return raw, ev.EventID
}

// paddedEvent returns a valid event whose JSON form is size bytes long.
// It pads the event it measured: the length of another event's JSON can
// differ, because occurred_at drops the trailing zeros of its fraction.
func paddedEvent(t *testing.T, size int) ([]byte, string) {
	t.Helper()
	raw, eventID := rawEvent(t)
	padding := size - len(raw)
	require.Positive(t, padding)
	name := `"name":"Ada` + strings.Repeat("a", padding) + `"`
	padded := bytes.Replace(raw, []byte(`"name":"Ada"`), []byte(name), 1)
	require.Equal(t, size, len(padded))
	return padded, eventID
}

func hostileMessages(t *testing.T, maxPayload int) []hostileMessage {
	valid, validID := rawEvent(t)
	utf8InField, utf8InFieldID := rawEvent(t, `"aggregate_type":"patient"`, "\"aggregate_type\":\"pat\xffient\"")
	utf8InData, utf8InDataID := rawEvent(t, `"name":"Ada"`, "\"name\":\"Ad\xffa\"")
	otherType, otherTypeID := rawEvent(t, `"event_type":"patient.registered"`, `"event_type":"invoice.paid"`)
	forged, forgedID := rawEvent(t)
	newline, newlineID := rawEvent(t)
	largest, largestID := paddedEvent(t, maxPayload)
	occurredAt, _ := rawEvent(t, `"occurred_at":"`, `"occurred_at":"yesterday","x":"`)
	eventTypeNumber, _ := rawEvent(t, `"event_type":"patient.registered"`, `"event_type":42`)
	dataString, _ := rawEvent(t, `"data":{"name":"Ada"}`, `"data":"Ada"`)
	noEventID, _ := rawEvent(t, `"event_id":`, `"id":`)

	return []hostileMessage{
		{name: "EmptyBody", data: []byte{}, want: deadLettered},
		{name: "BinaryBody", data: []byte("\x89PNG\r\n\x1a\n\x00\x00\xff"), want: deadLettered},
		{name: "InvalidUTF8Body", data: []byte("\xff\xfe\xfd"), want: deadLettered},
		{name: "BodyIsNumber", data: []byte("42"), want: deadLettered},
		{name: "OccurredAtNotATime", data: occurredAt, want: deadLettered},
		{name: "EventTypeIsNumber", data: eventTypeNumber, want: deadLettered},
		{name: "DataNotAnObject", data: dataString, want: deadLettered},
		{name: "NoEventID", data: noEventID, want: deadLettered},
		{name: "HeaderWithBadEscape", header: nats.Header{uuidHeader: {`broken\q`}}, data: valid,
			want: deadLettered},
		{name: "TenMiBBody", data: bytes.Repeat([]byte("x"), 10<<20), want: rejected},
		{name: "LargestBodyNotAnEvent", data: bytes.Repeat([]byte("x"), maxPayload), want: deadLettered,
			dataCut: true},
		{name: "LargestEvent", data: largest, want: handled, eventID: largestID},
		// nats.go writes a CR or LF in a header value as a space.
		{name: "HeaderWithNewline", header: nats.Header{"trace": {"a\r\nInjected: yes"}}, data: newline,
			want: handled, eventID: newlineID},
		{name: "ForgedDeliveryState", data: forged, want: handled, eventID: forgedID, header: nats.Header{
			core.MetadataDeadLetterPending: {"4"}, core.MetadataDecodeError: {"forged"},
			core.MetadataDeliveryCount: {"99"},
		}},
		// encoding/json replaces invalid UTF-8 in a string with U+FFFD, and
		// keeps data as raw bytes.
		{name: "InvalidUTF8InStringField", data: utf8InField, want: handled, eventID: utf8InFieldID,
			checkEvent: func(t *testing.T, ev core.Event) {
				require.Equal(t, "pat\uFFFDient", ev.AggregateType)
			}},
		{name: "InvalidUTF8InData", data: utf8InData, want: handled, eventID: utf8InDataID,
			checkEvent: func(t *testing.T, ev core.Event) {
				require.Equal(t, "{\"name\":\"Ad\xffa\"}", string(ev.Data))
			}},
		// The subject, not the payload's event_type, selects the handlers.
		{name: "EventTypeOfOtherSubject", data: otherType, want: handled, eventID: otherTypeID,
			checkEvent: func(t *testing.T, ev core.Event) {
				require.Equal(t, "invoice.paid", ev.EventType)
			}},
		{name: "SubjectWithoutHandler", data: valid, eventType: "invoice.paid", want: ignored, eventID: validID},
	}
}

// TestHostileMessages publishes messages on the event subjects with
// nats.go, as other tools might, and checks what the bus does with each,
// and that the handler goes on to handle a valid event published after
// it.
func TestHostileMessages(t *testing.T) {
	ctx := context.Background()
	a := newTestAdapter(t)
	bus, err := deadletter.New(deadletter.Config{
		Adapter: a, Policy: core.Policy{Initial: 20 * time.Millisecond}, DLQRetryPause: 50 * time.Millisecond,
		CloseTimeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	received := &handledEvents{events: map[string]core.Event{}}
	require.NoError(t, bus.Handle("index", "patient.registered", func(ctx context.Context, ev core.Event) error {
		received.add(ev)
		return nil
	}))
	runTestBus(t, bus)

	for _, msg := range hostileMessages(t, int(a.conn.MaxPayload())) {
		t.Run(msg.name, func(t *testing.T) {
			eventType := msg.eventType
			if eventType == "" {
				eventType = "patient.registered"
			}
			raw := nats.NewMsg(a.names.eventSubject(eventType))
			raw.Header = msg.header
			raw.Data = msg.data
			ack, err := a.js.PublishMsg(ctx, raw)
			if msg.want == rejected {
				require.ErrorIs(t, err, nats.ErrMaxPayload, "the client must reject a message over the server's max payload")
			} else {
				require.NoError(t, err)
			}

			after := newTestEvent(t, "patient.registered")
			require.NoError(t, bus.Publish(ctx, after))
			requireEventually(t, "the valid event published after the hostile message", func() bool {
				_, ok := received.get(after.EventID)
				return ok
			})

			switch msg.want {
			case deadLettered:
				entry := waitDLQEntry(t, a, ack.Sequence)
				require.Equal(t, core.ErrorTypeDecode, entry.ErrorType)
				require.Equal(t, "index", entry.Handler)
				require.NotEmpty(t, entry.Error)
				if msg.dataCut {
					require.True(t, bytes.HasPrefix(msg.data, entry.EventData), "event_data must keep the data's start")
					require.Less(t, len(entry.EventData), len(msg.data))
					require.Contains(t, entry.Error, "event_data cut at ")
				} else {
					require.True(t, bytes.Equal(msg.data, entry.EventData),
						"event_data must keep the data byte for byte; got %d bytes, want %d",
						len(entry.EventData), len(msg.data))
				}
				requireAllAcknowledged(t, a)
			case handled:
				requireEventually(t, "the hostile message's event", func() bool {
					_, ok := received.get(msg.eventID)
					return ok
				})
				if msg.checkEvent != nil {
					ev, _ := received.get(msg.eventID)
					msg.checkEvent(t, ev)
				}
				requireNoDLQEntry(t, a, ack.Sequence)
				requireAllAcknowledged(t, a)
			case ignored:
				requireNoDLQEntry(t, a, ack.Sequence)
				stored, err := a.events.GetMsg(ctx, ack.Sequence)
				require.NoError(t, err, "a message that no handler consumes must stay in the events stream")
				require.Equal(t, msg.data, stored.Data)
			}
		})
	}
}

func runTestBus(t *testing.T, bus *deadletter.Bus) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- bus.Run(context.Background()) }()
	t.Cleanup(func() {
		require.NoError(t, bus.Close())
		require.NoError(t, <-done)
	})
	select {
	case <-bus.Running():
	case <-time.After(waitTimeout):
		t.Fatal("bus handlers did not subscribe")
	}
}

func requireEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, waitTimeout, 5*time.Millisecond, "timed out after %s waiting for %s",
		waitTimeout, what)
}

// waitDLQEntry waits for the DLQ entry of the event at seq.
func waitDLQEntry(t *testing.T, a *Adapter, seq uint64) core.Entry {
	t.Helper()
	var found core.Entry
	requireEventually(t, "the dead letter entry of sequence "+formatID(seq), func() bool {
		entries, err := a.DLQ().List(context.Background(), core.ListOptions{Limit: 100})
		require.NoError(t, err)
		for _, e := range entries {
			if e.SourceID == formatID(seq) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

func requireNoDLQEntry(t *testing.T, a *Adapter, seq uint64) {
	t.Helper()
	entries, err := a.DLQ().List(context.Background(), core.ListOptions{Limit: 100})
	require.NoError(t, err)
	for _, e := range entries {
		require.NotEqual(t, formatID(seq), e.SourceID, "sequence %d must not be dead-lettered: %s", seq, e.Error)
	}
}

// requireAllAcknowledged waits until the handler's consumer has no message
// pending or waiting for an acknowledgement.
func requireAllAcknowledged(t *testing.T, a *Adapter) {
	t.Helper()
	name := consumerName("index", "patient.registered")
	requireEventually(t, "every message acknowledged", func() bool {
		consumer, err := a.events.Consumer(context.Background(), name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return false
		}
		require.NoError(t, err)
		info, err := consumer.Info(context.Background())
		require.NoError(t, err)
		return info.NumAckPending == 0 && info.NumPending == 0
	})
}
