package nats

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	deadletter "github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/core"
)

// largestEventMessage returns the message of a valid event whose size on
// the wire, headers included, is size.
func largestEventMessage(t *testing.T, a *Adapter, size int) (*message.Message, string) {
	t.Helper()
	probe := message.NewMessage("3df766bf-ab8f-43c1-bb04-f07dac9f60fa", nil)
	out, err := encodeMessage(a.names.eventSubject("patient.registered"), probe)
	require.NoError(t, err)
	payload, eventID := paddedEvent(t, size-headerSize(out.Header))
	return message.NewMessage(probe.UUID, payload), eventID
}

func TestPublishKeepsRoomForDLQEntry(t *testing.T) {
	a := newTestAdapter(t)
	limit := int(a.conn.MaxPayload()) - dlqHeaderRoom

	t.Run("RejectsLargerEvent", func(t *testing.T) {
		msg, _ := largestEventMessage(t, a, limit+1)
		err := a.Publisher().Publish("patient.registered", msg)
		require.ErrorIs(t, err, core.ErrInvalidEvent)
		require.ErrorContains(t, err, "kept for the headers of its dead letter entry")
	})

	t.Run("DeadLettersLargestEventWhole", func(t *testing.T) {
		bus, err := deadletter.New(deadletter.Config{
			Adapter: a, DLQRetryPause: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
		})
		require.NoError(t, err)
		// The longest error the entry's headers can hold whole is about
		// maxHeaderBytes, so this one is cut as well.
		longError := strings.Repeat("upstream returned\n", 5000)
		require.NoError(t, bus.Handle("index", "patient.registered", func(ctx context.Context, ev core.Event) error {
			return core.Permanent(errors.New(longError))
		}))
		runTestBus(t, bus)

		msg, eventID := largestEventMessage(t, a, limit)
		require.NoError(t, a.Publisher().Publish("patient.registered", msg))

		var entries []core.Entry
		requireEventually(t, "the dead letter entry of the largest event", func() bool {
			entries, err = a.DLQ().List(context.Background(), core.ListOptions{})
			require.NoError(t, err)
			return len(entries) == 1
		})
		require.Equal(t, eventID, entries[0].EventID)
		require.Equal(t, []byte(msg.Payload), entries[0].EventData, "the event must be kept whole")
		requireSameOrCut(t, core.FieldError, core.Permanent(errors.New(longError)).Error(), entries[0].Error)
	})
}

func TestDLQCutsDataOverMaxPayload(t *testing.T) {
	ctx := context.Background()
	q := newTestAdapter(t).dlq
	maxPayload := int(q.js.Conn().MaxPayload())
	entry := newTestEntry(t, "index")
	entry.EventData = []byte(strings.Repeat("x", maxPayload))
	entry.ErrorType = core.ErrorTypeDecode

	id, err := q.Add(ctx, entry)
	require.NoError(t, err, "an entry over the max payload must still be written")
	got, err := q.Get(ctx, id)
	require.NoError(t, err)
	require.Less(t, len(got.EventData), maxPayload)
	require.Equal(t, entry.EventData[:len(got.EventData)], got.EventData, "the data's start must be kept")
	note, rest, _ := strings.Cut(got.Error, "\n")
	require.Contains(t, note, "event_data cut at ")
	require.Contains(t, note, "The whole message is at sequence 42 of stream DEADLETTER_EVENTS.")
	require.Equal(t, entry.Error, rest, "the error must follow the note whole")

	require.NoError(t, q.MoveToReplayed(ctx, id, time.Now()), "a cut entry must fit the replayed stream")
}
