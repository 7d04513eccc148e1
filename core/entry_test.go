package core

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// splitFields reads a fuzz input as field names and values separated by NUL
// bytes: name, value, name, value. A name without a value gets "", and a
// name given twice keeps its last value, as in a map read from a broker.
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

// fieldMap turns Entry.Fields into the map a broker returns.
func fieldMap(pairs []string) map[string]string {
	fields := make(map[string]string, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		fields[pairs[i]] = pairs[i+1]
	}
	return fields
}

// requireSameEntry compares entries, taking empty and nil event data as
// equal and times by instant.
func requireSameEntry(t *testing.T, want, got Entry, what string) {
	t.Helper()
	require.True(t, bytes.Equal(want.EventData, got.EventData), "%s: event_data %q, want %q", what,
		got.EventData, want.EventData)
	for _, times := range [][2]time.Time{
		{want.FailedAt, got.FailedAt}, {want.FirstFailedAt, got.FirstFailedAt}, {want.ReplayedAt, got.ReplayedAt},
	} {
		require.True(t, times[0].Equal(times[1]), "%s: time %s, want %s", what, times[1], times[0])
	}
	want.EventData, got.EventData = nil, nil
	want.FailedAt, got.FailedAt = time.Time{}, time.Time{}
	want.FirstFailedAt, got.FirstFailedAt = time.Time{}, time.Time{}
	want.ReplayedAt, got.ReplayedAt = time.Time{}, time.Time{}
	require.Equal(t, want, got, what)
}

func TestParseEntry(t *testing.T) {
	failedAt := time.Date(2026, 3, 1, 9, 30, 0, 123456000, time.UTC)
	entry := Entry{
		ID: "7-0", EventData: []byte(validEvent), Handler: "send_welcome_email", Error: "mail server timed out",
		FailedAt: failedAt, EventType: "patient.registered", EventID: "3df766bf-ab8f-43c1-bb04-f07dac9f60fa",
		AggregateType: "patient", AggregateID: "7f9c2e1a-5b3d-4c8e-9a6f-1d2b3c4d5e6f", Attempts: 4,
		FirstFailedAt: failedAt.Add(-14 * time.Second), ErrorType: ErrorTypeFailure,
		SourceStream: "events:patient.registered", SourceID: "1-0", ReplayCount: 1,
	}

	t.Run("RoundTrips", func(t *testing.T) {
		parsed, err := ParseEntry(entry.ID, fieldMap(entry.Fields()))
		require.NoError(t, err)
		requireSameEntry(t, entry, parsed, "entry read back")
	})

	t.Run("KeepsWhatParsesOfAMalformedEntry", func(t *testing.T) {
		fields := fieldMap(entry.Fields())
		fields[FieldFailedAt] = "yesterday"
		fields[FieldAttempts] = "99999999999999999999999"
		delete(fields, FieldEventID)

		parsed, err := ParseEntry("8-0", fields)
		require.ErrorContains(t, err, "8-0", "the error must name the entry")
		require.Equal(t, "8-0", parsed.ID)
		require.Equal(t, entry.Handler, parsed.Handler)
		require.Equal(t, entry.EventData, parsed.EventData)
		require.True(t, parsed.FailedAt.IsZero(), "a malformed time must stay zero")
		require.Zero(t, parsed.Attempts, "a count that does not fit an int must stay zero")
		require.Empty(t, parsed.EventID)
	})

	t.Run("QuotesNoFieldValue", func(t *testing.T) {
		for _, name := range []string{FieldFailedAt, FieldFirstFailedAt, FieldReplayedAt, FieldAttempts,
			FieldReplayCount} {
			for _, value := range []string{marker, "2026-03-01T09:30:00Z" + marker, "1" + marker + huge,
				"9999999999999999999999999999" + marker, "-9999999999999999999999999999"} {
				fields := fieldMap(entry.Fields())
				fields[name] = value

				_, err := ParseEntry("10-0", fields)
				require.ErrorContains(t, err, "field "+name+" is ", "the error must name the field")
				require.NotContains(t, err.Error(), marker, "the error must not show the value of %s", name)
				require.Less(t, len(err.Error()), maxDecodeError, "the error must stay short: %.400s", err)
			}
		}
	})

	t.Run("RejectsTimeOutsideFourDigitYears", func(t *testing.T) {
		fields := fieldMap(entry.Fields())
		fields[FieldFailedAt] = "9999-12-31T23:00:00-05:00"

		parsed, err := ParseEntry("9-0", fields)
		require.ErrorContains(t, err, "outside the years 0000 to 9999")
		require.True(t, parsed.FailedAt.IsZero(),
			"a time in the year 10000 in UTC cannot be written back, so it must stay zero")
	})
}

// FuzzParseEntry checks that any field map read from a broker gives an
// entry with its id and text fields, so that it can be listed and deleted,
// and that an entry read without error is written and read back unchanged.
func FuzzParseEntry(f *testing.F) {
	f.Fuzz(func(t *testing.T, id string, encoded []byte) {
		fields := splitFields(encoded)
		entry, err := ParseEntry(id, fields)

		require.Equal(t, id, entry.ID, "every entry, malformed or not, must keep its id")
		require.Equal(t, fields[FieldEventData], string(entry.EventData))
		require.Equal(t, fields[FieldHandler], entry.Handler)
		require.Equal(t, fields[FieldError], entry.Error)
		require.Equal(t, fields[FieldEventType], entry.EventType)
		require.Equal(t, fields[FieldEventID], entry.EventID)
		require.Equal(t, fields[FieldSourceID], entry.SourceID)
		require.Equal(t, fields[FieldErrorType], string(entry.ErrorType))
		if err != nil {
			require.ErrorContains(t, err, "parse dead letter entry")
			require.LessOrEqual(t, len(err.Error()), len(id)+200,
				"an error must not grow with the fields' values: %.400s", err)
			return
		}

		for _, name := range RequiredFields {
			require.Contains(t, fields, name, "an entry without field %s must give an error", name)
		}
		again, err := ParseEntry(id, fieldMap(entry.Fields()))
		require.NoError(t, err, "an entry read without error must be read back without error")
		// Entries are written with microseconds.
		entry.FailedAt = entry.FailedAt.Truncate(time.Microsecond)
		entry.FirstFailedAt = entry.FirstFailedAt.Truncate(time.Microsecond)
		entry.ReplayedAt = entry.ReplayedAt.Truncate(time.Microsecond)
		requireSameEntry(t, entry, again, "entry written and read back")
	})
}

// FuzzEntryRoundTrip checks that any entry the middleware can write is read
// back unchanged and without error.
func FuzzEntryRoundTrip(f *testing.F) {
	f.Fuzz(func(t *testing.T, eventData []byte, handler, errorText, eventType, eventID string,
		attempts, replayCount int, failedAt, firstFailedAt, replayedAt int64, errorType, sourceID string) {
		entry := Entry{
			ID: "1-0", EventData: eventData, Handler: handler, Error: errorText,
			FailedAt: fuzzTime(failedAt), EventType: eventType, EventID: eventID,
			AggregateType: eventType, AggregateID: eventID, Attempts: attempts,
			FirstFailedAt: fuzzTime(firstFailedAt), ErrorType: ErrorType(errorType),
			SourceStream: sourceID, SourceID: sourceID, ReplayCount: replayCount,
			ReplayedAt: fuzzTime(replayedAt),
		}

		parsed, err := ParseEntry(entry.ID, fieldMap(entry.Fields()))
		require.NoError(t, err)
		requireSameEntry(t, entry, parsed, "entry written and read back")
	})
}

// fuzzTime maps n to a time that an entry can hold: zero for 0, otherwise
// a whole microsecond between the years 0000 and 9999.
func fuzzTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	first := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	last := time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro()
	span := uint64(last - first + 1)
	return time.UnixMicro(first + int64(uint64(n)%span)).UTC()
}
