package redisstream

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/middleware"
)

// splitFields reads a fuzz input as field names and values separated by NUL
// bytes: name, value, name, value. A name without a value gets "", and a
// name given twice keeps its last value, as in an entry read from Redis.
func splitFields(encoded []byte) map[string]string {
	fields := map[string]string{}
	if len(encoded) == 0 {
		return fields
	}
	parts := strings.Split(string(encoded), "\x00")
	for i := 0; i < len(parts); i += 2 {
		value := ""
		if i+1 < len(parts) {
			value = parts[i+1]
		}
		fields[parts[i]] = value
	}
	return fields
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

// TestDecodeHidesMetadataValues checks that the decode error of an entry
// whose metadata field is not a JSON object of strings shows none of it.
func TestDecodeHidesMetadataValues(t *testing.T) {
	const marker = "PII7anaSouza"
	huge := strings.Repeat(marker, 50<<10)
	for _, metadata := range []string{
		marker + huge,
		`{"name":"` + marker + huge,
		`{"name":["` + marker + `"]}`,
		`{"` + marker + huge + `":1}`,
		`["` + marker + `"]`,
	} {
		msg := decode("1712345678901-0", map[string]any{fieldPayload: "{}", fieldMetadata: metadata})
		reason := msg.Metadata.Get(core.MetadataDecodeError)
		require.Contains(t, reason, "stream entry 1712345678901-0: metadata is not a JSON object of strings: ")
		require.NotContains(t, reason, marker, "the decode error must not show the metadata")
		require.Less(t, len(reason), maxDecodeError, "the decode error must stay short")
	}
}

// TestDecodeDropsPartialMetadata checks that metadata which fails to decode
// adds none of its keys, although encoding/json stores the keys before the
// failing one.
func TestDecodeDropsPartialMetadata(t *testing.T) {
	msg := decode("1-0", map[string]any{fieldPayload: "{}", fieldMetadata: `{"trace_id":"t1","count":1}`})
	require.NotEmpty(t, msg.Metadata.Get(core.MetadataDecodeError))
	require.Empty(t, msg.Metadata.Get("trace_id"), "a key decoded before the error must be dropped")
	require.Len(t, msg.Metadata, 1, "only the decode error may be set")
}

// FuzzDecodeStreamEntry checks that any stream entry becomes a message, and
// that one which is not an event is dead-lettered as a decode failure with
// its bytes kept, while an event reaches the handler.
func FuzzDecodeStreamEntry(f *testing.F) {
	const id = "1712345678901-0"
	f.Fuzz(func(t *testing.T, encoded []byte) {
		fields := splitFields(encoded)
		values := make(map[string]any, len(fields))
		for key, value := range fields {
			values[key] = value
		}

		msg := decode(id, values)
		require.NotNil(t, msg)
		require.NotNil(t, msg.Metadata, "the subscription sets metadata on every message")
		require.NotEmpty(t, msg.UUID)
		decodeError := msg.Metadata.Get(core.MetadataDecodeError)
		for _, key := range deliveryStateKeys {
			if key != core.MetadataDecodeError {
				require.Empty(t, msg.Metadata.Get(key), "a publisher must not set delivery state %s", key)
			}
		}
		if payload, ok := fields[fieldPayload]; ok {
			require.Equal(t, payload, string(msg.Payload), "the payload field must be kept byte for byte")
		} else {
			require.NotEmpty(t, decodeError, "an entry without a payload field must be a decode failure")
			require.True(t, json.Valid(msg.Payload), "the fields of an entry without a payload must be JSON")
		}

		// What emit sets on every message it hands out.
		msg.Metadata.Set(core.MetadataDeliveryCount, "1")
		msg.Metadata.Set(core.MetadataSourceStream, "events:patient.registered")
		msg.Metadata.Set(core.MetadataSourceID, id)
		payload := bytes.Clone(msg.Payload)
		entries, handled := runRetry(t, msg)

		_, err := core.DecodeEvent(payload)
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
		require.Equal(t, payload, entries[0].EventData, "the dead letter entry must keep the raw bytes")
		require.Equal(t, id, entries[0].SourceID)
	})
}
