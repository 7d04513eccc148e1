package nats

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/core"
)

func newTestEntry(t testing.TB, handler string) core.Entry {
	t.Helper()
	ev := newTestEvent(t, "patient.registered")
	raw, err := ev.Marshal()
	require.NoError(t, err)
	return core.Entry{
		EventData:     raw,
		Handler:       handler,
		Error:         "panic: nil map\ngoroutine 7 [running]:\n\tmain.go:12 ",
		FailedAt:      time.Now().UTC(),
		EventType:     ev.EventType,
		EventID:       ev.EventID,
		AggregateType: ev.AggregateType,
		AggregateID:   ev.AggregateID,
		Attempts:      4,
		FirstFailedAt: time.Now().UTC().Add(-14 * time.Second),
		ErrorType:     core.ErrorTypePanic,
		SourceStream:  "DEADLETTER_EVENTS",
		SourceID:      "42",
		ReplayCount:   1,
	}
}

// addEntries adds n entries for handlers h0, h1, ... and returns their ids.
func addEntries(t testing.TB, q *DLQ, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		id, err := q.Add(context.Background(), newTestEntry(t, "h"+strconv.Itoa(i)))
		require.NoError(t, err)
		ids[i] = id
	}
	return ids
}

func TestDLQ(t *testing.T) {
	ctx := context.Background()

	t.Run("AddsAndGetsEntryUnchanged", func(t *testing.T) {
		q := newTestAdapter(t).dlq
		want := newTestEntry(t, "send_welcome_email")
		id, err := q.Add(ctx, want)
		require.NoError(t, err)
		require.Equal(t, "1", id)

		got, err := q.Get(ctx, id)
		require.NoError(t, err)
		want.ID = id
		want.FailedAt = want.FailedAt.Truncate(time.Microsecond)
		want.FirstFailedAt = want.FirstFailedAt.Truncate(time.Microsecond)
		require.Equal(t, want, got)
	})

	t.Run("CreatesDeletedStreamAgain", func(t *testing.T) {
		a := newTestAdapter(t)
		addEntries(t, a.dlq, 1)
		require.NoError(t, a.js.DeleteStream(ctx, a.names.dlqStream))

		_, err := a.dlq.Add(ctx, newTestEntry(t, "send_welcome_email"))
		require.NoError(t, err, "a DLQ write after the DLQ stream was deleted must create it again")
		n, err := a.dlq.Len(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(1), n, "the stream created again must hold the new entry")
	})

	t.Run("ReportsUnknownIDAsNotFound", func(t *testing.T) {
		q := newTestAdapter(t).dlq
		addEntries(t, q, 1)
		for _, id := range []string{"2", "0", "abc", ""} {
			_, err := q.Get(ctx, id)
			require.ErrorIs(t, err, core.ErrEntryNotFound, "id %q", id)
		}
	})

	t.Run("ListsNewestFirstWithPaging", func(t *testing.T) {
		q := newTestAdapter(t).dlq
		ids := addEntries(t, q, 70)
		n, err := q.Len(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 70, n)

		page, err := q.List(ctx, core.ListOptions{Limit: 40})
		require.NoError(t, err)
		require.Len(t, page, 40)
		require.Equal(t, ids[69], page[0].ID)
		require.Equal(t, "h69", page[0].Handler)
		require.Equal(t, ids[30], page[39].ID)

		page, err = q.List(ctx, core.ListOptions{Limit: 40, Before: page[39].ID})
		require.NoError(t, err)
		require.Len(t, page, 30)
		require.Equal(t, ids[29], page[0].ID)
		require.Equal(t, ids[0], page[29].ID)

		all, err := q.List(ctx, core.ListOptions{})
		require.NoError(t, err)
		require.Len(t, all, 70)
	})

	t.Run("SkipsDeletedEntriesInList", func(t *testing.T) {
		q := newTestAdapter(t).dlq
		ids := addEntries(t, q, 5)
		removed, err := q.Delete(ctx, ids[1], ids[3], "999", "junk")
		require.NoError(t, err)
		require.Equal(t, 2, removed)

		page, err := q.List(ctx, core.ListOptions{Limit: 2})
		require.NoError(t, err)
		require.Equal(t, []string{ids[4], ids[2]}, []string{page[0].ID, page[1].ID})
		_, err = q.Get(ctx, ids[1])
		require.ErrorIs(t, err, core.ErrEntryNotFound)
	})

	t.Run("RejectsMalformedBefore", func(t *testing.T) {
		q := newTestAdapter(t).dlq
		addEntries(t, q, 1)
		_, err := q.List(ctx, core.ListOptions{Before: "x"})
		require.ErrorIs(t, err, core.ErrInvalidConfig)
	})

	t.Run("MovesEntryToReplayed", func(t *testing.T) {
		q := newTestAdapter(t).dlq
		ids := addEntries(t, q, 2)
		replayedAt := time.Now().UTC().Truncate(time.Microsecond)
		require.NoError(t, q.MoveToReplayed(ctx, ids[0], replayedAt))

		_, err := q.Get(ctx, ids[0])
		require.ErrorIs(t, err, core.ErrEntryNotFound)
		replayed, err := q.List(ctx, core.ListOptions{Replayed: true})
		require.NoError(t, err)
		require.Len(t, replayed, 1)
		require.Equal(t, "h0", replayed[0].Handler)
		require.Equal(t, replayedAt, replayed[0].ReplayedAt)
		require.Contains(t, replayed[0].Error, "\n\tmain.go:12 ")

		require.NoError(t, q.MoveToReplayed(ctx, ids[0], replayedAt), "moving a moved entry again must succeed")
		require.ErrorIs(t, q.MoveToReplayed(ctx, "999", replayedAt), core.ErrEntryNotFound)
		n, err := q.Len(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
	})

	t.Run("FinishesInterruptedMove", func(t *testing.T) {
		q := newTestAdapter(t).dlq
		ids := addEntries(t, q, 1)

		// An earlier run copied the entry and stopped before deleting it.
		raw, err := q.stream.GetMsg(ctx, 1)
		require.NoError(t, err)
		copied := nats.NewMsg(q.names.replayedSubject + ids[0])
		copied.Header = raw.Header
		copied.Data = raw.Data
		_, err = q.js.PublishMsg(ctx, copied)
		require.NoError(t, err)

		require.NoError(t, q.MoveToReplayed(ctx, ids[0], time.Now()))
		replayed, err := q.List(ctx, core.ListOptions{Replayed: true})
		require.NoError(t, err)
		require.Len(t, replayed, 1, "running a move again must not copy the entry twice")
		_, err = q.Get(ctx, ids[0])
		require.ErrorIs(t, err, core.ErrEntryNotFound)
	})

	t.Run("MovesEntryWithReusedID", func(t *testing.T) {
		q := newTestAdapter(t).dlq
		ids := addEntries(t, q, 1)
		require.NoError(t, q.MoveToReplayed(ctx, ids[0], time.Now()))

		require.NoError(t, q.js.DeleteStream(ctx, q.names.dlqStream))
		reused := addEntries(t, q, 1)
		require.Equal(t, ids, reused, "the recreated DLQ stream must reuse the id")
		require.NoError(t, q.MoveToReplayed(ctx, reused[0], time.Now()))

		n, err := q.Len(ctx)
		require.NoError(t, err)
		require.Zero(t, n)
		replayed, err := q.List(ctx, core.ListOptions{Replayed: true})
		require.NoError(t, err)
		require.Len(t, replayed, 2, "the entry with the reused id must be copied next to the earlier one")
		require.NotEqual(t, replayed[0].EventID, replayed[1].EventID)
	})

	t.Run("ReportsCopyOfEarlierStreamAsNotFound", func(t *testing.T) {
		q := newTestAdapter(t).dlq
		ids := addEntries(t, q, 2)
		for _, id := range ids {
			require.NoError(t, q.MoveToReplayed(ctx, id, time.Now()))
		}

		// Id 1 of the recreated stream is deleted, and id 2 was never
		// written there; only copies of the earlier entries exist.
		require.NoError(t, q.js.DeleteStream(ctx, q.names.dlqStream))
		reused := addEntries(t, q, 1)
		removed, err := q.Delete(ctx, reused[0])
		require.NoError(t, err)
		require.Equal(t, 1, removed)

		for _, id := range ids {
			require.ErrorIs(t, q.MoveToReplayed(ctx, id, time.Now()), core.ErrEntryNotFound,
				"the copy of an entry of the deleted stream must not count as a move of entry %s", id)
			require.ErrorIs(t, q.Replay(ctx, id, time.Now()), core.ErrEntryNotFound,
				"the copy of an entry of the deleted stream must not count as a replay of entry %s", id)
		}
	})

	t.Run("CountsEntriesDroppedAtCap", func(t *testing.T) {
		q := newTestAdapter(t, func(c *Config) { c.DLQMaxLen = 3 }).dlq
		ids := addEntries(t, q, 5)

		dropped, err := q.Dropped(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 2, dropped)
		n, err := q.Len(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 3, n)

		removed, err := q.Delete(ctx, ids[4])
		require.NoError(t, err)
		require.Equal(t, 1, removed)
		require.NoError(t, q.MoveToReplayed(ctx, ids[3], time.Now()))
		dropped, err = q.Dropped(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 2, dropped, "deleted and replayed entries are not dropped")

		addEntries(t, q, 3)
		dropped, err = q.Dropped(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 3, dropped)
	})
}
