package nats

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/core"
)

// fuzzTime maps n to a whole microsecond between the years 0000 and 9999,
// the times an entry can hold.
func fuzzTime(n int64) time.Time {
	first := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	last := time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro()
	span := uint64(last - first + 1)
	return time.UnixMicro(first + int64(uint64(n)%span)).UTC()
}

// FuzzDLQEntryRoundTrip checks that an entry written to JetStream, with its
// fields as headers, is read back unchanged whatever bytes they hold.
func FuzzDLQEntryRoundTrip(f *testing.F) {
	q := newTestAdapter(f).dlq
	f.Fuzz(func(t *testing.T, eventData []byte, handler, errorText, eventID string, attempts int,
		failedAt int64) {
		ctx := context.Background()
		at := fuzzTime(failedAt)
		entry := core.Entry{
			EventData: eventData, Handler: handler, Error: errorText, FailedAt: at, EventType: handler,
			EventID: eventID, AggregateType: errorText, AggregateID: eventID, Attempts: attempts,
			FirstFailedAt: at, ErrorType: core.ErrorType(handler), SourceStream: errorText, SourceID: eventID,
			ReplayCount: attempts,
		}

		id, err := q.Add(ctx, entry)
		require.NoError(t, err)
		got, err := q.Get(ctx, id)
		require.NoError(t, err)
		_, err = q.Delete(ctx, id)
		require.NoError(t, err)

		require.True(t, bytes.Equal(eventData, got.EventData), "event_data %q, want %q", got.EventData, eventData)
		require.True(t, at.Equal(got.FailedAt), "failed_at %s, want %s", got.FailedAt, at)
		require.True(t, at.Equal(got.FirstFailedAt), "first_failed_at %s, want %s", got.FirstFailedAt, at)
		// Values too long for the header limit come back cut.
		requireSameOrCut(t, core.FieldHandler, entry.Handler, got.Handler)
		requireSameOrCut(t, core.FieldError, entry.Error, got.Error)
		requireSameOrCut(t, core.FieldEventID, entry.EventID, got.EventID)
		requireSameOrCut(t, core.FieldAggregateType, entry.AggregateType, got.AggregateType)
		require.Equal(t, entry.Attempts, got.Attempts)
		require.Equal(t, entry.ReplayCount, got.ReplayCount)
		require.Equal(t, id, got.ID)
	})
}

// requireSameOrCut checks that got is want, or want cut by setHeaders.
func requireSameOrCut(t *testing.T, field, want, got string) {
	t.Helper()
	if got == want {
		return
	}
	kept, note, found := strings.Cut(got, "\n... cut at ")
	require.True(t, found, "field %s is %q, want %q", field, got, want)
	require.True(t, strings.HasPrefix(want, kept), "field %s was cut to %q, which does not start %q", field, kept,
		want)
	require.Equal(t, fmt.Sprintf("%d of %d bytes to fit the nats header limit", len(kept), len(want)), note)
}

// FuzzDLQStoredEntry checks that any message another tool publishes on the
// DLQ subject is listed and read with its id and data, and can be deleted,
// so that a malformed entry never blocks the DLQ.
func FuzzDLQStoredEntry(f *testing.F) {
	q := newTestAdapter(f).dlq
	f.Fuzz(func(t *testing.T, lines, data []byte) {
		ctx := context.Background()
		msg := nats.NewMsg(q.names.dlqSubject)
		msg.Data = data
		if header, err := nats.DecodeHeadersMsg(headerBlock(lines)); err == nil {
			msg.Header = header
		}
		ack, err := q.js.PublishMsg(ctx, msg)
		if err != nil || ack.Duplicate {
			// The client or the server rejected the headers, as it does
			// for an invalid key or a failed Nats-Expected-* check, so
			// nothing was stored.
			return
		}
		id := formatID(ack.Sequence)

		listed, err := q.List(ctx, core.ListOptions{Limit: 1})
		require.NoError(t, err, "a malformed entry must not fail the listing")
		require.Len(t, listed, 1)
		require.Equal(t, id, listed[0].ID)

		got, err := q.Get(ctx, id)
		require.NoError(t, err, "a malformed entry must be shown")
		require.Equal(t, id, got.ID)
		require.True(t, bytes.Equal(data, got.EventData), "event_data %q, want %q", got.EventData, data)

		n, err := q.Delete(ctx, id)
		require.NoError(t, err, "a malformed entry must be deletable")
		require.Equal(t, 1, n)
	})
}
