package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	deadletter "github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/core"
)

func entryContracts() []Contract {
	return []Contract{
		{"EntryHoldsEventAndFailure", checkEntryFields},
		{"LargePayloadSurvivesByteForByte", checkLargePayload},
		{"NonASCIIPayloadSurvivesByteForByte", checkNonASCIIPayload},
		{"FailedDLQWriteDeliversEventAgain", checkFailedDLQWrite},
	}
}

// deadLetterOne publishes ev to a handler that rejects it as permanent and
// returns the event's DLQ entry, read back with Get.
func deadLetterOne(t testing.TB, cfg Config, a core.Adapter, ev core.Event, handlerName, reason string) core.Entry {
	t.Helper()
	bus := startBus(t, cfg, deadletter.Config{Adapter: a}, handler{
		name: handlerName, eventType: ev.EventType,
		policy: core.Policy{MaxRetries: 3, Initial: cfg.Pause},
		fn: func(ctx context.Context, ev core.Event) error {
			return core.Permanent(errors.New(reason))
		},
	})
	bus.publish(t, ev)

	entries := waitEntries(t, cfg, a.DLQ(), 1, func() string {
		return "an event whose handler returns a permanent error must be dead-lettered"
	})
	entry, err := a.DLQ().Get(context.Background(), entries[0].ID)
	if err != nil {
		t.Fatalf("DLQ.Get must return the entry that List listed, id %q: %v", entries[0].ID, err)
	}
	if entry.ID != entries[0].ID {
		t.Errorf("DLQ.Get(%q) must return the entry of that id, not %q", entries[0].ID, entry.ID)
	}
	return entry
}

func checkEntryFields(t testing.TB, cfg Config) {
	a := cfg.NewAdapter(t)
	ev := newEvent(t, newEventType("patient.registered"), nil)
	before := time.Now().UTC().Truncate(time.Microsecond)

	entry := deadLetterOne(t, cfg, a, ev, "send_welcome_email", "mailbox does not exist")
	after := time.Now().UTC()

	if want := marshal(t, ev); !bytes.Equal(entry.EventData, want) {
		t.Errorf("event_data must be the published event byte for byte;\n got %q\nwant %q",
			entry.EventData, want)
	}
	if entry.Handler != "send_welcome_email" {
		t.Errorf("handler must name the handler that gave up, %q, not %q", "send_welcome_email", entry.Handler)
	}
	if entry.Error != "mailbox does not exist" {
		t.Errorf("error must be the last error's message %q, not %q", "mailbox does not exist", entry.Error)
	}
	checkTime(t, "failed_at", entry.FailedAt, before, after)

	identity := []struct{ field, got, want string }{
		{core.FieldEventType, entry.EventType, ev.EventType},
		{core.FieldEventID, entry.EventID, ev.EventID},
		{core.FieldAggregateType, entry.AggregateType, ev.AggregateType},
		{core.FieldAggregateID, entry.AggregateID, ev.AggregateID},
	}
	for _, f := range identity {
		if f.got != f.want {
			t.Errorf("%s must be copied from the event, %q, not %q", f.field, f.want, f.got)
		}
	}

	if entry.Attempts != 1 {
		t.Errorf("attempts must count the one attempt made, not %d", entry.Attempts)
	}
	if entry.ErrorType != core.ErrorTypePermanent {
		t.Errorf("error_type must be %q for a permanent error, not %q", core.ErrorTypePermanent, entry.ErrorType)
	}
	checkTime(t, "first_failed_at", entry.FirstFailedAt, before, entry.FailedAt)
	if entry.SourceStream == "" {
		t.Errorf("source_stream must name the stream or subject the event was read from")
	}
	if entry.SourceID == "" {
		t.Errorf("source_id must hold the broker's id of the message")
	}
	if entry.ReplayCount != 0 {
		t.Errorf("replay_count must be 0 for an event never replayed, not %d", entry.ReplayCount)
	}
	if !entry.ReplayedAt.IsZero() {
		t.Errorf("replayed_at must be unset on an entry in the DLQ, not %s", entry.ReplayedAt)
	}
}

// checkTime fails t unless ts is a UTC time within [from, to], both
// inclusive at microsecond precision.
func checkTime(t testing.TB, field string, ts, from, to time.Time) {
	t.Helper()
	if ts.IsZero() {
		t.Errorf("%s must be set", field)
		return
	}
	if ts.Location() != time.UTC {
		t.Errorf("%s must be in UTC, not %s", field, ts.Location())
	}
	from = from.Truncate(time.Microsecond)
	if ts.Before(from) || ts.After(to) {
		t.Errorf("%s must fall within the test, between %s and %s; it is %s",
			field, core.FormatTime(from), core.FormatTime(to), core.FormatTime(ts))
	}
}

func checkLargePayload(t testing.TB, cfg Config) {
	a := cfg.NewAdapter(t)
	const size = 1 << 20

	// Varied bytes defeat any compression that would hide truncation.
	var note strings.Builder
	for i := 0; note.Len() < size; i++ {
		fmt.Fprintf(&note, "line %d of the discharge letter. ", i)
	}
	ev := newEvent(t, newEventType("patient.discharged"), map[string]any{"letter": note.String()[:size]})

	entry := deadLetterOne(t, cfg, a, ev, "archive_letter", "archive is full")
	want := marshal(t, ev)
	if !bytes.Equal(entry.EventData, want) {
		t.Errorf("a 1 MiB event must reach the DLQ byte for byte; event_data has %d bytes, %d expected",
			len(entry.EventData), len(want))
	}
}

func checkNonASCIIPayload(t testing.TB, cfg Config) {
	a := cfg.NewAdapter(t)
	ev := newEvent(t, newEventType("patient.registered"), map[string]any{
		"name":    "Zoë Ångström-Øvergård",
		"address": "Straße 5, 東京都, Ελλάδα",
		"note":    "allergic to penicillin ⚠️ 🏥",
	})

	// The error message carries non-ASCII text too, as a translated
	// message from a remote service would.
	const reason = "adresse ungültig: «Straße 5»"
	entry := deadLetterOne(t, cfg, a, ev, "send_welcome_email", reason)

	if want := marshal(t, ev); !bytes.Equal(entry.EventData, want) {
		t.Errorf("an event with non-ASCII text must reach the DLQ byte for byte;\n got %q\nwant %q",
			entry.EventData, want)
	}
	if entry.Error != reason {
		t.Errorf("an error with non-ASCII text must be kept as is, %q, not %q", reason, entry.Error)
	}
}

// failingDLQ is a DLQ whose first writes fail, as when the broker is
// briefly unreachable.
type failingDLQ struct {
	core.DLQ

	mu       sync.Mutex
	failures int
	adds     []time.Time
}

var errDLQDown = errors.New("dlq unreachable")

func (d *failingDLQ) Add(ctx context.Context, e core.Entry) (string, error) {
	d.mu.Lock()
	d.adds = append(d.adds, time.Now())
	fail := len(d.adds) <= d.failures
	d.mu.Unlock()

	if fail {
		return "", errDLQDown
	}
	return d.DLQ.Add(ctx, e)
}

func (d *failingDLQ) addTimes() []time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]time.Time(nil), d.adds...)
}

func checkFailedDLQWrite(t testing.TB, cfg Config) {
	a := cfg.NewAdapter(t)
	caps := a.Capabilities()
	eventType := newEventType("invoice.paid")
	const failures = 2

	dlq := &failingDLQ{DLQ: a.DLQ(), failures: failures}
	var calls attempts
	bus := startBus(t, cfg, deadletter.Config{Adapter: a, DLQ: dlq, DLQRetryPause: cfg.Pause}, handler{
		name: "post_ledger", eventType: eventType,
		policy: core.Policy{MaxRetries: 3, Initial: cfg.Pause},
		fn: func(ctx context.Context, ev core.Event) error {
			calls.record(ev)
			return core.Permanent(errors.New("ledger account is closed"))
		},
	})
	ev := newEvent(t, eventType, nil)
	bus.publish(t, ev)

	entries := waitEntries(t, cfg, a.DLQ(), 1, func() string {
		return fmt.Sprintf("an event whose DLQ write fails %d times must be delivered again until the "+
			"write succeeds; the DLQ was written to %d times and is still empty", failures, len(dlq.addTimes()))
	})
	holds(t, cfg.quietPeriod(), func() bool { return dlqLen(t, a.DLQ()) == 1 }, func() string {
		return fmt.Sprintf("an event must be dead-lettered once after its DLQ write succeeds; the DLQ holds "+
			"%d entries", dlqLen(t, a.DLQ()))
	})

	if entries[0].EventID != ev.EventID {
		t.Errorf("the entry must be the event whose write failed, %s, not %s", ev.EventID, entries[0].EventID)
	}
	adds := dlq.addTimes()
	if len(adds) != failures+1 {
		t.Errorf("the DLQ write must be repeated until it succeeds, %d times in all; it ran %d times",
			failures+1, len(adds))
	}

	// A subscriber that keeps retry state also keeps the mark that the
	// handler has given up, so the next delivery writes the entry again
	// without running the handler.
	if caps.RetryState && calls.count() != 1 {
		t.Errorf("with RetryState, an event whose DLQ write failed must not run its handler again; it ran "+
			"%d times", calls.count())
	}
	if !caps.Redelivery {
		return
	}
	for i := 1; i < len(adds); i++ {
		gap := adds[i].Sub(adds[i-1])
		if low, _ := pauseBounds(cfg.Pause); gap < low {
			t.Errorf("a DLQ write must be tried again after the DLQ retry pause of %s; try %d came after %s",
				cfg.Pause, i+1, gap)
		}
	}
}
