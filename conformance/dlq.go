package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/deadletter/deadletter/core"
)

func dlqContracts() []Contract {
	return []Contract{
		{"DLQStartsEmpty", checkDLQEmpty},
		{"DLQGetReturnsAddedEntry", checkDLQGet},
		{"DLQGetOfUnknownIDIsNotFound", checkDLQGetUnknown},
		{"DLQListsNewestFirstInPages", checkDLQList},
		{"DLQDeleteRemovesEntries", checkDLQDelete},
		{"DLQMoveToReplayedMovesEntry", checkDLQMoveToReplayed},
	}
}

// sampleEntry returns a complete entry for the nth failure of a test.
func sampleEntry(t testing.TB, n int) core.Entry {
	t.Helper()
	ev := newEvent(t, "patient.registered", map[string]any{"name": "Grace Hopper", "n": n})
	failed := time.Now().UTC()
	return core.Entry{
		EventData:     marshal(t, ev),
		Handler:       "send_welcome_email",
		Error:         fmt.Sprintf("mail server timed out (%d)", n),
		FailedAt:      failed,
		EventType:     ev.EventType,
		EventID:       ev.EventID,
		AggregateType: ev.AggregateType,
		AggregateID:   ev.AggregateID,
		Attempts:      4,
		FirstFailedAt: failed.Add(-14 * time.Second),
		ErrorType:     core.ErrorTypeFailure,
		SourceStream:  "events:patient.registered",
		SourceID:      fmt.Sprintf("1700000000000-%d", n),
		ReplayCount:   n % 3,
	}
}

// addEntries adds n sample entries and returns them with their ids, oldest
// first.
func addEntries(t testing.TB, dlq core.DLQ, n int) []core.Entry {
	t.Helper()
	entries := make([]core.Entry, n)
	for i := range entries {
		entries[i] = sampleEntry(t, i)
		id, err := dlq.Add(context.Background(), entries[i])
		if err != nil {
			t.Fatalf("DLQ.Add must store an entry: %v", err)
		}
		if id == "" {
			t.Fatalf("DLQ.Add must return the new entry's id")
		}
		entries[i].ID = id
	}
	return entries
}

// sameEntry fails t with each field of got that differs from want. Times
// are compared at the microsecond precision of core.TimeFormat.
func sameEntry(t testing.TB, got, want core.Entry) {
	t.Helper()
	fields := []struct {
		name      string
		got, want any
	}{
		{"id", got.ID, want.ID},
		{core.FieldEventData, string(got.EventData), string(want.EventData)},
		{core.FieldHandler, got.Handler, want.Handler},
		{core.FieldError, got.Error, want.Error},
		{core.FieldFailedAt, core.FormatTime(got.FailedAt), core.FormatTime(want.FailedAt)},
		{core.FieldEventType, got.EventType, want.EventType},
		{core.FieldEventID, got.EventID, want.EventID},
		{core.FieldAggregateType, got.AggregateType, want.AggregateType},
		{core.FieldAggregateID, got.AggregateID, want.AggregateID},
		{core.FieldAttempts, got.Attempts, want.Attempts},
		{core.FieldFirstFailedAt, core.FormatTime(got.FirstFailedAt), core.FormatTime(want.FirstFailedAt)},
		{core.FieldErrorType, got.ErrorType, want.ErrorType},
		{core.FieldSourceStream, got.SourceStream, want.SourceStream},
		{core.FieldSourceID, got.SourceID, want.SourceID},
		{core.FieldReplayCount, got.ReplayCount, want.ReplayCount},
	}
	for _, f := range fields {
		if f.got != f.want {
			t.Errorf("entry %s: %s must read back as stored, %v, not %v", want.ID, f.name, f.want, f.got)
		}
	}
	if got.FailedAt.Location() != time.UTC {
		t.Errorf("entry %s: failed_at must read back in UTC, not %s", want.ID, got.FailedAt.Location())
	}
}

func ids(entries []core.Entry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.ID
	}
	return out
}

func checkDLQEmpty(t testing.TB, cfg Config) {
	dlq := cfg.NewAdapter(t).DLQ()
	ctx := context.Background()

	if n := dlqLen(t, dlq); n != 0 {
		t.Errorf("a new adapter's DLQ must be empty; Len returned %d", n)
	}
	if entries := listAll(t, dlq, false); len(entries) != 0 {
		t.Errorf("a new adapter's DLQ must list no entries; List returned %d", len(entries))
	}
	if entries := listAll(t, dlq, true); len(entries) != 0 {
		t.Errorf("a new adapter's replayed store must list no entries; List returned %d", len(entries))
	}
	dropped, err := dlq.Dropped(ctx)
	if err != nil {
		t.Errorf("DLQ.Dropped must succeed: %v", err)
	}
	if dropped != 0 {
		t.Errorf("a new adapter's DLQ must have dropped no entries; Dropped returned %d", dropped)
	}
}

func checkDLQGet(t testing.TB, cfg Config) {
	dlq := cfg.NewAdapter(t).DLQ()
	added := addEntries(t, dlq, 3)

	for _, want := range added {
		got, err := dlq.Get(context.Background(), want.ID)
		if err != nil {
			t.Errorf("DLQ.Get must return the entry added as %q: %v", want.ID, err)
			continue
		}
		sameEntry(t, got, want)
	}
	if n := dlqLen(t, dlq); n != int64(len(added)) {
		t.Errorf("DLQ.Len must count the %d entries added, not %d", len(added), n)
	}
}

func checkDLQGetUnknown(t testing.TB, cfg Config) {
	dlq := cfg.NewAdapter(t).DLQ()
	ctx := context.Background()
	deleted := addEntries(t, dlq, 1)[0].ID
	if _, err := dlq.Delete(ctx, deleted); err != nil {
		t.Fatalf("DLQ.Delete must succeed: %v", err)
	}

	for _, id := range []string{deleted, "no-such-entry", uuid.NewString()} {
		_, err := dlq.Get(ctx, id)
		if !errors.Is(err, core.ErrEntryNotFound) {
			t.Errorf("DLQ.Get of an id the DLQ does not hold, %q, must return an error wrapping "+
				"core.ErrEntryNotFound; got %v", id, err)
		}
	}
}

func checkDLQList(t testing.TB, cfg Config) {
	dlq := cfg.NewAdapter(t).DLQ()
	added := addEntries(t, dlq, 7)
	newestFirst := ids(added)
	slices.Reverse(newestFirst)

	all := listAll(t, dlq, false)
	if got := ids(all); !slices.Equal(got, newestFirst) {
		t.Fatalf("DLQ.List must return every entry newest first;\n got %v\nwant %v", got, newestFirst)
	}
	for i, entry := range all {
		sameEntry(t, entry, added[len(added)-1-i])
	}

	// Walk the DLQ in pages of 3: 3, 3, 1, then an empty page.
	var paged []string
	before := ""
	for page := 0; page < 4; page++ {
		entries, err := dlq.List(context.Background(), core.ListOptions{Limit: 3, Before: before})
		if err != nil {
			t.Fatalf("DLQ.List with Limit 3 and Before %q must succeed: %v", before, err)
		}
		want := min(3, max(0, len(added)-3*page))
		if len(entries) != want {
			t.Fatalf("DLQ.List page %d with Limit 3 must hold %d entries, not %d", page+1, want, len(entries))
		}
		if len(entries) == 0 {
			break
		}
		paged = append(paged, ids(entries)...)
		before = entries[len(entries)-1].ID
	}
	if !slices.Equal(paged, newestFirst) {
		t.Errorf("paging with Before must list every entry once, newest first;\n got %v\nwant %v",
			paged, newestFirst)
	}

	defaultLimit, err := dlq.List(context.Background(), core.ListOptions{})
	if err != nil {
		t.Fatalf("DLQ.List without options must succeed: %v", err)
	}
	if len(defaultLimit) != len(added) {
		t.Errorf("DLQ.List without a limit must return up to %d entries; it returned %d of %d",
			core.DefaultListLimit, len(defaultLimit), len(added))
	}
}

func checkDLQDelete(t testing.TB, cfg Config) {
	dlq := cfg.NewAdapter(t).DLQ()
	ctx := context.Background()
	added := addEntries(t, dlq, 4)

	n, err := dlq.Delete(ctx, added[0].ID, added[2].ID)
	if err != nil {
		t.Fatalf("DLQ.Delete of two entries must succeed: %v", err)
	}
	if n != 2 {
		t.Errorf("DLQ.Delete must count the entries it removed, 2, not %d", n)
	}
	if got, want := ids(listAll(t, dlq, false)), []string{added[3].ID, added[1].ID}; !slices.Equal(got, want) {
		t.Errorf("DLQ.Delete must remove exactly the given entries; the DLQ lists %v, want %v", got, want)
	}
	if got := dlqLen(t, dlq); got != 2 {
		t.Errorf("DLQ.Len must drop to 2 after deleting 2 of 4 entries, not %d", got)
	}

	n, err = dlq.Delete(ctx, added[0].ID)
	if err != nil {
		t.Fatalf("DLQ.Delete of an entry already deleted must succeed: %v", err)
	}
	if n != 0 {
		t.Errorf("DLQ.Delete of an entry already deleted must count 0, not %d", n)
	}
}

func checkDLQMoveToReplayed(t testing.TB, cfg Config) {
	dlq := cfg.NewAdapter(t).DLQ()
	ctx := context.Background()
	added := addEntries(t, dlq, 3)
	moved := added[1]
	replayedAt := time.Now().UTC().Add(time.Minute)

	if err := dlq.MoveToReplayed(ctx, moved.ID, replayedAt); err != nil {
		t.Fatalf("DLQ.MoveToReplayed of entry %q must succeed: %v", moved.ID, err)
	}
	if _, err := dlq.Get(ctx, moved.ID); !errors.Is(err, core.ErrEntryNotFound) {
		t.Errorf("a replayed entry must be gone from the DLQ: Get must return core.ErrEntryNotFound, got %v", err)
	}
	if got, want := ids(listAll(t, dlq, false)), []string{added[2].ID, added[0].ID}; !slices.Equal(got, want) {
		t.Errorf("MoveToReplayed must remove only its entry from the DLQ; the DLQ lists %v, want %v", got, want)
	}

	checkReplayedOnce(t, dlq, moved, replayedAt)

	// Running a replay again must neither fail on nor copy an entry that
	// has already moved.
	if err := dlq.MoveToReplayed(ctx, moved.ID, replayedAt.Add(time.Second)); err != nil {
		t.Errorf("DLQ.MoveToReplayed of an entry already replayed must succeed, since the entry is in "+
			"the replayed store: %v", err)
	}
	checkReplayedOnce(t, dlq, moved, replayedAt)

	err := dlq.MoveToReplayed(ctx, "no-such-entry", replayedAt)
	if !errors.Is(err, core.ErrEntryNotFound) {
		t.Errorf("DLQ.MoveToReplayed of an id in neither store must return core.ErrEntryNotFound, got %v", err)
	}
}

// checkReplayedOnce fails t unless the replayed store lists the entry
// exactly once, stamped with replayedAt.
func checkReplayedOnce(t testing.TB, dlq core.DLQ, moved core.Entry, replayedAt time.Time) {
	t.Helper()
	var found []core.Entry
	for _, e := range listAll(t, dlq, true) {
		if e.EventID == moved.EventID {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("List(Replayed: true) must hold the replayed entry once, not %d times", len(found))
	}

	got := found[0]
	if core.FormatTime(got.ReplayedAt) != core.FormatTime(replayedAt) {
		t.Errorf("a replayed entry's replayed_at must be the time given to MoveToReplayed, %s, not %s",
			core.FormatTime(replayedAt), core.FormatTime(got.ReplayedAt))
	}
	if string(got.EventData) != string(moved.EventData) || got.Handler != moved.Handler || got.Error != moved.Error {
		t.Errorf("a replayed entry must keep its event_data, handler and error")
	}
}
