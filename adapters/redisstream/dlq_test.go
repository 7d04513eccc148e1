package redisstream

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/testredis"
)

// newFuzzDLQ returns the DLQ of an adapter with a prefix of its own, whose
// keys are deleted when the fuzz test ends.
func newFuzzDLQ(f *testing.F) *DLQ {
	f.Helper()
	a, err := NewAdapter(Config{URL: testredis.URL(f), Prefix: testredis.Prefix()})
	require.NoError(f, err)
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.client.Del(ctx, a.dlq.stream, a.dlq.replayed, a.dlq.movedIDs, a.dlq.dropped).Err()
		_ = a.Close()
	})
	return a.dlq
}

// FuzzDLQEntryRoundTrip checks that an entry written to Redis is read back
// unchanged, whatever bytes its fields hold.
func FuzzDLQEntryRoundTrip(f *testing.F) {
	dlq := newFuzzDLQ(f)
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

		id, err := dlq.Add(ctx, entry)
		require.NoError(t, err)
		got, err := dlq.Get(ctx, id)
		require.NoError(t, err)
		_, err = dlq.Delete(ctx, id)
		require.NoError(t, err)

		require.True(t, bytes.Equal(eventData, got.EventData), "event_data %q, want %q", got.EventData, eventData)
		require.True(t, at.Equal(got.FailedAt), "failed_at %s, want %s", got.FailedAt, at)
		require.True(t, at.Equal(got.FirstFailedAt), "first_failed_at %s, want %s", got.FirstFailedAt, at)
		entry.ID, entry.EventData, entry.FailedAt, entry.FirstFailedAt = id, got.EventData, got.FailedAt,
			got.FirstFailedAt
		require.Equal(t, entry, got)
	})
}

// fuzzTime maps n to a whole microsecond between the years 0000 and 9999,
// the times an entry can hold.
func fuzzTime(n int64) time.Time {
	first := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	last := time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro()
	span := uint64(last - first + 1)
	return time.UnixMicro(first + int64(uint64(n)%span)).UTC()
}

// FuzzDLQStoredEntry checks that any entry another tool adds to the DLQ
// stream is listed and read with its id and text fields, and can be
// deleted, so that a malformed entry never blocks the DLQ.
func FuzzDLQStoredEntry(f *testing.F) {
	dlq := newFuzzDLQ(f)
	f.Fuzz(func(t *testing.T, encoded []byte) {
		fields := splitFields(encoded)
		if len(fields) == 0 {
			// XADD needs at least one field.
			return
		}
		values := make([]any, 0, 2*len(fields))
		for key, value := range fields {
			values = append(values, key, value)
		}
		ctx := context.Background()
		id, err := dlq.client.XAdd(ctx, &redis.XAddArgs{Stream: dlq.stream, Values: values}).Result()
		require.NoError(t, err)

		listed, err := dlq.List(ctx, core.ListOptions{Limit: 1})
		require.NoError(t, err, "a malformed entry must not fail the listing")
		require.Len(t, listed, 1)
		require.Equal(t, id, listed[0].ID)

		got, err := dlq.Get(ctx, id)
		require.NoError(t, err, "a malformed entry must be shown")
		require.Equal(t, id, got.ID)
		require.Equal(t, fields[core.FieldEventData], string(got.EventData))
		require.Equal(t, fields[core.FieldHandler], got.Handler)
		require.Equal(t, fields[core.FieldError], got.Error)
		require.Equal(t, fields[core.FieldEventID], got.EventID)

		n, err := dlq.Delete(ctx, id)
		require.NoError(t, err, "a malformed entry must be deletable")
		require.Equal(t, 1, n)
	})
}
