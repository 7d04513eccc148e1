package inspect_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/adapters/memory"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/inspect"
)

// newDLQ returns an empty in-memory DLQ without a cap.
func newDLQ(t *testing.T) core.DLQ {
	t.Helper()
	adapter, err := memory.New(memory.Config{DLQMaxLen: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = adapter.Close() })
	return adapter.DLQ()
}

// add writes an entry of handler and event type with the given error and
// failure time, and returns its id.
func add(t *testing.T, dlq core.DLQ, handler, eventType, errMsg string, failedAt time.Time) string {
	t.Helper()
	id, err := dlq.Add(context.Background(), core.Entry{
		EventData:     []byte(`{"event_type":"` + eventType + `","data":{"name":"Ana Souza"}}`),
		Handler:       handler,
		Error:         errMsg,
		FailedAt:      failedAt,
		EventType:     eventType,
		EventID:       fmt.Sprintf("evt-%d", failedAt.UnixNano()),
		AggregateType: "patient",
		AggregateID:   "p-1",
		Attempts:      4,
	})
	require.NoError(t, err)
	return id
}

func TestNormalizeError(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"UUID", "patient 3df766bf-ab8f-43c1-bb04-f07dac9f60fa not found", "patient <uuid> not found"},
		{"Numbers", "row 42 locked after 1.5s", "row <n> locked after <n>s"},
		{"Address", "dial tcp 10.1.2.3:5432: connection refused", "dial tcp <ip>:<n>: connection refused"},
		{"Time", "deadline 2026-12-04T16:14:47.129386Z passed", "deadline <time> passed"},
		{"Hex", "object 5f3a9c0d12 missing, ptr 0xc000123", "object <hex> missing, ptr <hex>"},
		{"Email", "mailbox ana.souza@example.org full", "mailbox <email> full"},
		{"FirstLineOnly", "panic: boom\ngoroutine 7 [running]:", "panic: boom"},
		{"PlainWordsKept", "decoded feedback from cafe", "decoded feedback from cafe"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, inspect.NormalizeError(c.in))
		})
	}

	t.Run("CutsLongMessages", func(t *testing.T) {
		long := inspect.NormalizeError(strings.Repeat("connection refused ", 30))
		require.LessOrEqual(t, len(long), 200)
		require.Contains(t, long, "...")
	})
}

func TestGroupKey(t *testing.T) {
	t.Run("SameCauseSameKey", func(t *testing.T) {
		a := inspect.GroupKey("sync", "patient 3df766bf-ab8f-43c1-bb04-f07dac9f60fa: timeout after 30s")
		b := inspect.GroupKey("sync", "patient 11111111-2222-4333-8444-555555555555: timeout after 31s")
		require.Equal(t, a, b)
		require.Len(t, a, 8)
	})
	t.Run("HandlerSplitsGroups", func(t *testing.T) {
		require.NotEqual(t, inspect.GroupKey("sync", "timeout"), inspect.GroupKey("email", "timeout"))
	})
}

func TestSummarize(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

	t.Run("CountsByTypeHandlerAndGroup", func(t *testing.T) {
		dlq := newDLQ(t)
		for i := range 3000 {
			add(t, dlq, "sync_to_legacy", "patient.registered",
				fmt.Sprintf("legacy refused patient %d at 10.0.0.%d:2575", i, i%250), base.Add(time.Duration(i)*time.Second))
		}
		add(t, dlq, "send_email", "appointment.booked", "smtp timeout", base.Add(time.Hour))

		s, err := inspect.Summarize(ctx, dlq, inspect.SummaryOptions{Window: -1, PageSize: 128})
		require.NoError(t, err)
		require.EqualValues(t, 3001, s.Total)
		require.Equal(t, 3001, s.Scanned)
		require.Equal(t, []inspect.Count{{"patient.registered", 3000}, {"appointment.booked", 1}}, s.ByEventType)
		require.Equal(t, []inspect.Count{{"sync_to_legacy", 3000}, {"send_email", 1}}, s.ByHandler)
		require.Len(t, s.Groups, 2, "3,000 failures of one outage form one group")
		require.Equal(t, 3000, s.Groups[0].Count)
		require.Equal(t, "legacy refused patient <n> at <ip>:<n>", s.Groups[0].Error)
		require.Equal(t, []string{"appointment.booked", "patient.registered"}, s.NewestEventTypes)
	})

	t.Run("StopsAtWindow", func(t *testing.T) {
		dlq := newDLQ(t)
		for i := range 30 {
			add(t, dlq, "h", "a.b", "boom", base.Add(time.Duration(i)*time.Second))
		}
		s, err := inspect.Summarize(ctx, dlq, inspect.SummaryOptions{Window: 10, PageSize: 4})
		require.NoError(t, err)
		require.EqualValues(t, 30, s.Total)
		require.Equal(t, 10, s.Scanned)
		require.Equal(t, base.Add(29*time.Second), s.Newest)
		require.Equal(t, base.Add(20*time.Second), s.Oldest)
	})

	t.Run("EmptyDLQ", func(t *testing.T) {
		s, err := inspect.Summarize(ctx, newDLQ(t), inspect.SummaryOptions{})
		require.NoError(t, err)
		require.Zero(t, s.Total)
		require.Empty(t, s.Groups)
	})
}

func TestSelect(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	dlq := newDLQ(t)
	var ids []string
	for i := range 50 {
		handler := "sync"
		if i%2 == 1 {
			handler = "email"
		}
		ids = append(ids, add(t, dlq, handler, "patient.registered", "boom", base.Add(time.Duration(i)*time.Minute)))
	}

	t.Run("ByHandlerOldestFirst", func(t *testing.T) {
		sel, err := inspect.Select(ctx, dlq, inspect.Filter{Handler: "email"}, 0, 7)
		require.NoError(t, err)
		require.Len(t, sel.Entries, 25)
		require.Equal(t, ids[1], sel.Entries[0].ID)
		require.Equal(t, ids[49], sel.Entries[24].ID)
		for _, e := range sel.Entries {
			require.Equal(t, "email", e.Handler)
			require.Nil(t, e.EventData, "a selection keeps no payloads")
		}
	})

	t.Run("LimitKeepsOldest", func(t *testing.T) {
		sel, err := inspect.Select(ctx, dlq, inspect.Filter{Handler: "sync"}, 3, 4)
		require.NoError(t, err)
		require.Len(t, sel.Entries, 3)
		require.Equal(t, []string{ids[0], ids[2], ids[4]},
			[]string{sel.Entries[0].ID, sel.Entries[1].ID, sel.Entries[2].ID})
	})

	t.Run("ByAge", func(t *testing.T) {
		f := inspect.Filter{FailedBefore: base.Add(10 * time.Minute), FailedAfter: base.Add(4 * time.Minute)}
		sel, err := inspect.Select(ctx, dlq, f, 0, 0)
		require.NoError(t, err)
		require.Len(t, sel.Entries, 5, "minutes 5 to 9")
		require.Equal(t, ids[5], sel.Entries[0].ID)
	})

	t.Run("ByErrorGroup", func(t *testing.T) {
		sel, err := inspect.Select(ctx, dlq, inspect.Filter{ErrorGroup: inspect.GroupKey("email", "boom")}, 0, 0)
		require.NoError(t, err)
		require.Len(t, sel.Entries, 25)
	})

	t.Run("ByIDsReportsMissing", func(t *testing.T) {
		sel, err := inspect.Select(ctx, dlq, inspect.Filter{IDs: []string{ids[3], "999999", ids[1]}}, 0, 0)
		require.NoError(t, err)
		require.Equal(t, []string{"999999"}, sel.Missing)
		require.Len(t, sel.Entries, 2)
		require.Equal(t, ids[1], sel.Entries[0].ID)
	})

	t.Run("RejectsNegativeLimit", func(t *testing.T) {
		_, err := inspect.Select(ctx, dlq, inspect.Filter{}, -1, 0)
		require.ErrorIs(t, err, core.ErrInvalidConfig)
	})
}
