package hospital

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/deadletter/deadletter/core"
)

// demoEvents returns the events the demo publishes: the patient whose
// legacy sync fails first, then two appointments.
func demoEvents() ([]core.Event, error) {
	patientID := "7f9c2e1a-5b3d-4c8e-9a6f-1d2b3c4d5e6f"
	specs := []struct {
		eventType, aggregateType, aggregateID string
		data                                  map[string]any
	}{
		{"patient.registered", "patient", patientID, map[string]any{
			"name": "Ana Souza", "birth_date": "1987-03-14", "ward": "cardiology"}},
		{"appointment.booked", "appointment", "0b6e4c1d-2a3f-4e5d-8c7b-9a1f2e3d4c5b", map[string]any{
			"patient_id": patientID, "clinic": "cardiology", "starts_at": "2026-12-11T09:30:00Z"}},
		{"appointment.booked", "appointment", "c3d4e5f6-a7b8-4c9d-8e1f-2a3b4c5d6e7f", map[string]any{
			"patient_id": patientID, "clinic": "radiology", "starts_at": "2026-12-12T14:00:00Z"}},
	}

	events := make([]core.Event, 0, len(specs))
	for _, spec := range specs {
		ev, err := core.NewEvent(spec.eventType, spec.aggregateType, spec.aggregateID, spec.data)
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		events = append(events, ev)
	}
	return events, nil
}

// checkDone closes d.done once every handler has its expected successes.
// The caller holds d.mu.
func (d *demo) checkDone() {
	for handler, want := range d.expected {
		if d.succeeded[handler] < want {
			return
		}
	}
	d.doneOnce.Do(func() { close(d.done) })
}

// waitForOutcome waits until the healthy handlers are done and the patient's
// event is in the DLQ, and returns its entry. The deadline is a few times
// the longest retry timeline, so a stuck run fails instead of hanging.
func (d *demo) waitForOutcome(ctx context.Context, dlq core.DLQ, eventID string) (core.Entry, error) {
	timeline := d.policy.Pause(1) + d.policy.Pause(2) + d.policy.Pause(3)
	deadline := time.Now().Add(defaultDemoTimeoutFactor*timeline + 10*time.Second)
	poll := min(max(d.policy.Pause(1)/10, 5*time.Millisecond), 200*time.Millisecond)

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-d.done:
	case <-timer.C:
		return core.Entry{}, errors.New("demo: the healthy handlers did not finish by the deadline")
	case <-ctx.Done():
		return core.Entry{}, ctx.Err()
	}

	for {
		entry, err := findEntry(ctx, dlq, eventID)
		if err == nil {
			return entry, nil
		}
		if !errors.Is(err, core.ErrEntryNotFound) {
			return core.Entry{}, err
		}
		if time.Now().After(deadline) {
			return core.Entry{}, fmt.Errorf("demo: event %s did not reach the DLQ by the deadline", eventID)
		}
		select {
		case <-ctx.Done():
			return core.Entry{}, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// findEntry looks for the newest DLQ entry of an event among the latest
// entries.
func findEntry(ctx context.Context, dlq core.DLQ, eventID string) (core.Entry, error) {
	entries, err := dlq.List(ctx, core.ListOptions{Limit: 50})
	if err != nil {
		return core.Entry{}, fmt.Errorf("demo: read the DLQ: %w", err)
	}
	for _, entry := range entries {
		if entry.EventID == eventID {
			return entry, nil
		}
	}
	return core.Entry{}, core.ErrEntryNotFound
}

func (d *demo) summary(published int, entry core.Entry) Summary {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := Summary{
		Published:    published,
		Attempts:     map[string]int{},
		Succeeded:    map[string]int{},
		DeadLettered: []core.Entry{entry},
		Elapsed:      time.Since(d.start),
	}
	for handler, n := range d.attempts {
		s.Attempts[handler] = n
		s.Succeeded[handler] = d.succeeded[handler]
	}
	return s
}

func (d *demo) printEntry(entry core.Entry) {
	d.printf("\nDead-lettered entry %s:\n", entry.ID)
	fields := entry.Fields()
	for i := 0; i+1 < len(fields); i += 2 {
		d.printf("  %-16s %s\n", fields[i], fields[i+1])
	}
}

func (d *demo) printSummary(s Summary) {
	handlers := make([]string, 0, len(s.Attempts))
	for handler := range s.Attempts {
		handlers = append(handlers, handler)
	}
	sort.Strings(handlers)

	d.printf("\nSummary after %.1fs: %d events published, %d dead-lettered\n",
		s.Elapsed.Seconds(), s.Published, len(s.DeadLettered))
	for _, handler := range handlers {
		d.printf("  %-26s %d attempts, %d succeeded\n", handler, s.Attempts[handler], s.Succeeded[handler])
	}
	if d.cfg.InspectHint != "" {
		d.printf("\nInspect the DLQ with: %s\n", d.cfg.InspectHint)
	}
}

func (d *demo) printf(format string, args ...any) {
	fmt.Fprintf(d.cfg.Out, format, args...)
}
