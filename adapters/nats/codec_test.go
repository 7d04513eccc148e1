package nats

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/middleware"
)

// headerBlock returns the header section of a NATS message whose header
// lines are lines, as the client reads it off the wire.
func headerBlock(lines []byte) []byte {
	return append(append([]byte("NATS/1.0\r\n"), lines...), "\r\n\r\n"...)
}

// storedMsg is a message as JetStream delivers it for the first time. It
// lets the fuzz test run the subscription's decoding without a server
// round trip per input; the hostile input tests cover the wire.
type storedMsg struct {
	jetstream.Msg
	header nats.Header
	data   []byte
}

func (m storedMsg) Headers() nats.Header { return m.header }
func (m storedMsg) Data() []byte         { return m.data }

func (m storedMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{
		Stream: "T_EVENTS", NumDelivered: 1, Sequence: jetstream.SequencePair{Stream: 7, Consumer: 7},
	}, nil
}

// entryRecorder keeps the entries that the retry middleware writes.
type entryRecorder struct{ entries []core.Entry }

func (r *entryRecorder) Add(ctx context.Context, e core.Entry) (string, error) {
	r.entries = append(r.entries, e)
	return strconv.Itoa(len(r.entries)), nil
}

// runRetry passes msg through the retry middleware, as the bus does, to a
// handler that succeeds. It returns the entries written and the events the
// handler received.
func runRetry(t *testing.T, msg *message.Message) ([]core.Entry, []core.Event) {
	t.Helper()
	recorder := &entryRecorder{}
	retry, err := middleware.NewRetry(middleware.RetryConfig{
		Handler: "index", DLQ: recorder, Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)

	var handled []core.Event
	handler := retry.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		ev, ok := middleware.EventFromContext(msg.Context())
		require.True(t, ok, "the handler must receive the decoded event")
		handled = append(handled, ev)
		return nil, nil
	})
	_, err = handler(msg)
	require.NoError(t, err, "the middleware must settle the message without an error")
	return recorder.entries, handled
}

// maxDecodeError bounds the error of a dead-lettered message that is not
// an event, whatever the message's size.
const maxDecodeError = 400

// TestDecodeHeadersCutsKey checks that the error of a header value that
// cannot be unescaped shows only the start of the header's name.
func TestDecodeHeadersCutsKey(t *testing.T) {
	const marker = "PII7anaSouza"
	key := "Trace-" + strings.Repeat("x", 80) + marker + strings.Repeat("y", 100<<10)
	_, _, err := decodeHeaders(nats.Header{key: {`bad \q escape ` + marker}})
	require.ErrorContains(t, err, `header "Trace-xxx`)
	require.ErrorContains(t, err, "value has an unknown escape \\q")
	require.NotContains(t, err.Error(), marker, "the error must show neither the value nor the whole name")
	require.Less(t, len(err.Error()), maxDecodeError)
}

// FuzzDecodeMessage checks that any message on an event subject becomes a
// Watermill message with its data as the payload. An event must reach the
// handler, and anything else must be dead-lettered as a decode failure
// with its bytes kept.
func FuzzDecodeMessage(f *testing.F) {
	a := newTestAdapter(f)
	sub := &subscription{Subscriber: newSubscriber(a, "index"), eventType: "patient.registered"}
	f.Fuzz(func(t *testing.T, lines, data []byte) {
		// A header block the client cannot parse reaches the subscription
		// as a message without headers.
		header, err := nats.DecodeHeadersMsg(headerBlock(lines))
		if err != nil {
			header = nil
		}

		wm, _ := sub.toWatermill(storedMsg{header: header, data: data})
		require.NotNil(t, wm.Metadata)
		require.NotEmpty(t, wm.UUID)
		require.True(t, bytes.Equal(data, wm.Payload), "the data must be the payload, byte for byte")
		for _, key := range []string{core.MetadataRetryAfter, core.MetadataLastError, core.MetadataErrorType,
			core.MetadataFirstFailedAt, core.MetadataDeadLetterPending} {
			require.Empty(t, wm.Metadata.Get(key), "a publisher must not set delivery state %s", key)
		}
		require.Equal(t, "1", wm.Metadata.Get(core.MetadataDeliveryCount))
		decodeError := wm.Metadata.Get(core.MetadataDecodeError)

		entries, handled := runRetry(t, wm)

		_, err = core.DecodeEvent(data)
		if decodeError == "" && err == nil {
			require.Len(t, handled, 1, "an event must reach the handler")
			require.Empty(t, entries, "an event that is handled must not be dead-lettered")
			return
		}
		require.Empty(t, handled, "a message that is not an event must not reach the handler")
		require.Len(t, entries, 1, "a message that is not an event must be dead-lettered once")
		require.Equal(t, core.ErrorTypeDecode, entries[0].ErrorType)
		require.NotEmpty(t, entries[0].Error)
		require.Less(t, len(entries[0].Error), maxDecodeError,
			"a decode error is logged, so it must not grow with the message: %.400s", entries[0].Error)
		require.True(t, bytes.Equal(data, entries[0].EventData), "the dead letter entry must keep the raw bytes")
		require.Equal(t, "7", entries[0].SourceID)
	})
}

// FuzzHeaderValue checks that any metadata value survives as a NATS header
// value: one line without surrounding white space, read back unchanged.
func FuzzHeaderValue(f *testing.F) {
	f.Fuzz(func(t *testing.T, value string) {
		escaped := escapeHeaderValue(value)
		require.NotContains(t, escaped, "\r")
		require.NotContains(t, escaped, "\n")
		require.Equal(t, strings.Trim(escaped, " \t"), escaped, "NATS trims white space around a header value")

		got, err := unescapeHeaderValue(escaped)
		require.NoError(t, err)
		require.Equal(t, value, got)
	})
}

func TestHeadersOverLimitAreCut(t *testing.T) {
	ctx := context.Background()
	longError := "upstream returned\n" + strings.Repeat("\x00<html>\t", 20000)

	t.Run("DLQEntry", func(t *testing.T) {
		q := newTestAdapter(t).dlq
		entry := newTestEntry(t, "send_welcome_email")
		entry.Error = longError
		entry.AggregateType = strings.Repeat("p", 40000)

		id, err := q.Add(ctx, entry)
		require.NoError(t, err, "an entry with fields over the header limit must still be written")
		got, err := q.Get(ctx, id)
		require.NoError(t, err)
		require.NotEqual(t, entry.Error, got.Error, "the error must have been cut")
		requireSameOrCut(t, core.FieldError, entry.Error, got.Error)
		requireSameOrCut(t, core.FieldAggregateType, entry.AggregateType, got.AggregateType)
		require.Equal(t, entry.EventData, got.EventData, "event_data is the message data and must be whole")
		require.Equal(t, entry.EventID, got.EventID, "short fields must stay whole")

		require.NoError(t, q.MoveToReplayed(ctx, id, time.Now()), "a cut entry must still be replayable")
	})

	t.Run("RetryState", func(t *testing.T) {
		state := newTestAdapter(t).retryState
		subject := state.subject("index", "patient.registered", 1)
		saved, err := state.save(ctx, subject, message.Metadata{core.MetadataLastError: longError}, []byte("{}"))
		require.NoError(t, err, "a long last error must not stop the retry state from being saved")
		require.True(t, saved)

		loaded, found, err := state.load(ctx, subject)
		require.NoError(t, err)
		require.True(t, found)
		requireSameOrCut(t, core.MetadataLastError, longError, loaded[core.MetadataLastError])
	})
}
