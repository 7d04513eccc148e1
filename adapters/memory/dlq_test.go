package memory_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/adapters/memory"
	"github.com/deadletter/deadletter/core"
)

func testEntry(handler string, n int) core.Entry {
	return core.Entry{
		EventData:     []byte(fmt.Sprintf(`{"event_type":"patient.registered","n":%d}`, n)),
		Handler:       handler,
		Error:         fmt.Sprintf("attempt failed %d", n),
		FailedAt:      time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("CET", 3600)),
		EventType:     "patient.registered",
		EventID:       fmt.Sprintf("00000000-0000-4000-8000-%012d", n),
		AggregateType: "patient",
		AggregateID:   "11111111-1111-4111-8111-111111111111",
		Attempts:      4,
		ErrorType:     core.ErrorTypeFailure,
	}
}

func addEntries(t *testing.T, dlq core.DLQ, count int) []string {
	t.Helper()
	ids := make([]string, 0, count)
	for i := range count {
		id, err := dlq.Add(context.Background(), testEntry("mailer", i))
		require.NoError(t, err)
		ids = append(ids, id)
	}
	return ids
}

func entryIDs(entries []core.Entry) []string {
	ids := make([]string, 0, len(entries))
	for _, e := range entries {
		ids = append(ids, e.ID)
	}
	return ids
}

func TestDLQ(t *testing.T) {
	ctx := context.Background()

	t.Run("AddThenGetKeepsFields", func(t *testing.T) {
		dlq := newAdapter(t, memory.Config{}).DLQ()
		entry := testEntry("mailer", 1)
		entry.EventData = []byte("not json \xff\x00 raw bytes")
		entry.SourceStream = "memory:patient.registered"
		entry.SourceID = "7"

		id, err := dlq.Add(ctx, entry)
		require.NoError(t, err)
		got, err := dlq.Get(ctx, id)
		require.NoError(t, err)

		require.Equal(t, id, got.ID)
		require.Equal(t, entry.EventData, got.EventData)
		require.Equal(t, entry.Handler, got.Handler)
		require.Equal(t, entry.Error, got.Error)
		require.Equal(t, time.UTC, got.FailedAt.Location())
		require.Equal(t, entry.FailedAt.Truncate(time.Microsecond).UTC(), got.FailedAt)
		require.Equal(t, entry.EventID, got.EventID)
		require.Equal(t, entry.Attempts, got.Attempts)
		require.Equal(t, entry.ErrorType, got.ErrorType)
		require.Equal(t, entry.SourceStream, got.SourceStream)
		require.Equal(t, entry.SourceID, got.SourceID)
	})

	t.Run("GetUnknownIsNotFound", func(t *testing.T) {
		dlq := newAdapter(t, memory.Config{}).DLQ()
		for _, id := range []string{"1", "0-0", "not an id", ""} {
			_, err := dlq.Get(ctx, id)
			require.ErrorIs(t, err, core.ErrEntryNotFound, "id %q", id)
		}
	})

	t.Run("ListNewestFirstWithPaging", func(t *testing.T) {
		dlq := newAdapter(t, memory.Config{}).DLQ()
		ids := addEntries(t, dlq, 5)

		all, err := dlq.List(ctx, core.ListOptions{})
		require.NoError(t, err)
		require.Equal(t, []string{ids[4], ids[3], ids[2], ids[1], ids[0]}, entryIDs(all))

		page, err := dlq.List(ctx, core.ListOptions{Limit: 2})
		require.NoError(t, err)
		require.Equal(t, []string{ids[4], ids[3]}, entryIDs(page))

		page, err = dlq.List(ctx, core.ListOptions{Limit: 2, Before: ids[3]})
		require.NoError(t, err)
		require.Equal(t, []string{ids[2], ids[1]}, entryIDs(page))

		page, err = dlq.List(ctx, core.ListOptions{Limit: 2, Before: ids[1]})
		require.NoError(t, err)
		require.Equal(t, []string{ids[0]}, entryIDs(page))
	})

	t.Run("ListDefaultsToHundred", func(t *testing.T) {
		dlq := newAdapter(t, memory.Config{}).DLQ()
		addEntries(t, dlq, core.DefaultListLimit+5)
		entries, err := dlq.List(ctx, core.ListOptions{})
		require.NoError(t, err)
		require.Len(t, entries, core.DefaultListLimit)
	})

	t.Run("ListBeforeDeletedID", func(t *testing.T) {
		dlq := newAdapter(t, memory.Config{}).DLQ()
		ids := addEntries(t, dlq, 3)
		_, err := dlq.Delete(ctx, ids[1])
		require.NoError(t, err)

		entries, err := dlq.List(ctx, core.ListOptions{Before: ids[1]})
		require.NoError(t, err)
		require.Equal(t, []string{ids[0]}, entryIDs(entries))
	})

	t.Run("ListRejectsBadOptions", func(t *testing.T) {
		dlq := newAdapter(t, memory.Config{}).DLQ()
		_, err := dlq.List(ctx, core.ListOptions{Limit: -1})
		require.ErrorIs(t, err, core.ErrInvalidConfig)
		_, err = dlq.List(ctx, core.ListOptions{Before: "yesterday"})
		require.ErrorIs(t, err, core.ErrInvalidConfig)
	})

	t.Run("DeleteCountsRemoved", func(t *testing.T) {
		dlq := newAdapter(t, memory.Config{}).DLQ()
		ids := addEntries(t, dlq, 3)

		removed, err := dlq.Delete(ctx, ids[0], ids[2], "999", ids[0])
		require.NoError(t, err)
		require.Equal(t, 2, removed)
		n, err := dlq.Len(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		_, err = dlq.Get(ctx, ids[1])
		require.NoError(t, err)
	})

	t.Run("MoveToReplayed", func(t *testing.T) {
		dlq := newAdapter(t, memory.Config{}).DLQ()
		ids := addEntries(t, dlq, 3)
		replayedAt := time.Date(2026, 2, 3, 4, 5, 6, 7000, time.FixedZone("EST", -5*3600))

		require.NoError(t, dlq.MoveToReplayed(ctx, ids[2], replayedAt))
		require.NoError(t, dlq.MoveToReplayed(ctx, ids[0], replayedAt))

		_, err := dlq.Get(ctx, ids[0])
		require.ErrorIs(t, err, core.ErrEntryNotFound, "moved entry still in the DLQ")
		n, err := dlq.Len(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(1), n)

		replayed, err := dlq.List(ctx, core.ListOptions{Replayed: true})
		require.NoError(t, err)
		require.Equal(t, []string{ids[2], ids[0]}, entryIDs(replayed))
		require.Equal(t, replayedAt.UTC(), replayed[0].ReplayedAt)
		require.Equal(t, "mailer", replayed[0].Handler)

		remaining, err := dlq.List(ctx, core.ListOptions{})
		require.NoError(t, err)
		require.Equal(t, []string{ids[1]}, entryIDs(remaining))
		require.True(t, remaining[0].ReplayedAt.IsZero())
	})

	t.Run("MoveToReplayedTwiceIsNoop", func(t *testing.T) {
		dlq := newAdapter(t, memory.Config{}).DLQ()
		ids := addEntries(t, dlq, 1)
		require.NoError(t, dlq.MoveToReplayed(ctx, ids[0], time.Now()))
		require.NoError(t, dlq.MoveToReplayed(ctx, ids[0], time.Now()))

		replayed, err := dlq.List(ctx, core.ListOptions{Replayed: true})
		require.NoError(t, err)
		require.Len(t, replayed, 1)
	})

	t.Run("MoveToReplayedUnknownIsNotFound", func(t *testing.T) {
		dlq := newAdapter(t, memory.Config{}).DLQ()
		err := dlq.MoveToReplayed(ctx, "42", time.Now())
		require.ErrorIs(t, err, core.ErrEntryNotFound)
	})

	t.Run("ConcurrentMovesMoveOnce", func(t *testing.T) {
		dlq := newAdapter(t, memory.Config{}).DLQ()
		ids := addEntries(t, dlq, 1)

		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				require.NoError(t, dlq.MoveToReplayed(ctx, ids[0], time.Now()))
			})
		}
		wg.Wait()

		replayed, err := dlq.List(ctx, core.ListOptions{Replayed: true})
		require.NoError(t, err)
		require.Len(t, replayed, 1)
		n, err := dlq.Len(ctx)
		require.NoError(t, err)
		require.Zero(t, n)
	})

	t.Run("CapDropsOldestAndCounts", func(t *testing.T) {
		dlq := newAdapter(t, memory.Config{DLQMaxLen: 3}).DLQ()
		ids := addEntries(t, dlq, 5)

		n, err := dlq.Len(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(3), n)
		dropped, err := dlq.Dropped(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(2), dropped)
		_, err = dlq.Get(ctx, ids[1])
		require.ErrorIs(t, err, core.ErrEntryNotFound)
		_, err = dlq.Get(ctx, ids[2])
		require.NoError(t, err)
	})

	t.Run("DefaultCapIsFiveThousand", func(t *testing.T) {
		dlq := newAdapter(t, memory.Config{}).DLQ()
		addEntries(t, dlq, memory.DefaultDLQMaxLen+1)
		dropped, err := dlq.Dropped(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(1), dropped)
	})

	t.Run("NoCapKeepsAll", func(t *testing.T) {
		dlq := newAdapter(t, memory.Config{DLQMaxLen: -1}).DLQ()
		addEntries(t, dlq, memory.DefaultDLQMaxLen+1)
		n, err := dlq.Len(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(memory.DefaultDLQMaxLen+1), n)
	})

	t.Run("ConcurrentAddsKeepEveryEntry", func(t *testing.T) {
		dlq := newAdapter(t, memory.Config{}).DLQ()
		var (
			wg  sync.WaitGroup
			mu  sync.Mutex
			ids = map[string]bool{}
		)
		for w := range 8 {
			wg.Go(func() {
				for i := range 50 {
					id, err := dlq.Add(ctx, testEntry(fmt.Sprintf("h%d", w), i))
					require.NoError(t, err)
					mu.Lock()
					ids[id] = true
					mu.Unlock()
				}
			})
		}
		wg.Wait()

		require.Len(t, ids, 400)
		n, err := dlq.Len(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(400), n)
	})

	t.Run("CancelledContextFails", func(t *testing.T) {
		dlq := newAdapter(t, memory.Config{}).DLQ()
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		_, err := dlq.Add(cancelled, testEntry("mailer", 1))
		require.ErrorIs(t, err, context.Canceled)
		n, err := dlq.Len(ctx)
		require.NoError(t, err)
		require.Zero(t, n)
	})
}
