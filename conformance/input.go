package conformance

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	deadletter "github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/core"
)

func inputContracts() []Contract {
	return []Contract{
		{"PayloadThatIsNoEventIsDeadLettered", checkInvalidPayload},
		{"UndecodableMessageIsDeadLettered", checkUndecodableMessage},
	}
}

// checkDecodeEntry fails t unless the DLQ holds one decode entry for the
// handler whose event data contains raw, and the handler then handles a
// valid event published after it.
func checkDecodeEntry(t testing.TB, cfg Config, a core.Adapter, publishBad func(eventType string),
	raw []byte, exact bool) {
	t.Helper()
	eventType := newEventType("patient.registered")

	var calls attempts
	bus := startBus(t, cfg, deadletter.Config{Adapter: a}, handler{
		name: "send_welcome_email", eventType: eventType,
		policy: core.Policy{MaxRetries: 3, Initial: cfg.Pause},
		fn: func(ctx context.Context, ev core.Event) error {
			calls.record(ev)
			return nil
		},
	})
	publishBad(eventType)
	valid := newEvent(t, eventType, nil)
	bus.publish(t, valid)

	entries := waitEntries(t, cfg, a.DLQ(), 1, func() string {
		return "a message that cannot be decoded into an event must be dead-lettered"
	})
	waitFor(t, cfg.Timeout, func() bool { return calls.of(valid.EventID) == 1 }, func() string {
		return "a handler must go on to handle valid events after an undecodable one"
	})
	holds(t, cfg.quietPeriod(), func() bool { return calls.count() == 1 && dlqLen(t, a.DLQ()) == 1 },
		func() string {
			return fmt.Sprintf("an undecodable message must be dead-lettered once without reaching the "+
				"handler; the handler ran %d times and the DLQ holds %d entries", calls.count(),
				dlqLen(t, a.DLQ()))
		})

	entry := entries[0]
	if entry.ErrorType != core.ErrorTypeDecode {
		t.Errorf("an undecodable message must be dead-lettered with error_type %q, not %q",
			core.ErrorTypeDecode, entry.ErrorType)
	}
	if entry.Error == "" {
		t.Errorf("an undecodable message's entry must give the decode error in its error field")
	}
	if entry.Handler != "send_welcome_email" {
		t.Errorf("an undecodable message's entry must name the handler that received it, not %q", entry.Handler)
	}
	if exact && !bytes.Equal(entry.EventData, raw) {
		t.Errorf("an undecodable message's entry must keep its raw bytes as event_data;\n got %q\nwant %q",
			entry.EventData, raw)
	}
	if !exact && !bytes.Contains(entry.EventData, raw) {
		t.Errorf("an undecodable message's entry must keep its raw bytes in event_data;\n got %q\nwant it "+
			"to contain %q", entry.EventData, raw)
	}
}

func checkInvalidPayload(t testing.TB, cfg Config) {
	a := cfg.NewAdapter(t)
	raw := []byte(`{"event_type": "patient.registered", "data": {"name": "Ada"`)

	checkDecodeEntry(t, cfg, a, func(eventType string) {
		msg := message.NewMessage(watermill.NewUUID(), raw)
		if err := a.Publisher().Publish(eventType, msg); err != nil {
			t.Fatalf("the publisher must accept any payload: %v", err)
		}
	}, raw, true)
}

func checkUndecodableMessage(t testing.TB, cfg Config) {
	a := cfg.NewAdapter(t)
	if cfg.PublishRaw == nil {
		t.Skipf("Config.PublishRaw is nil, so adapter %s cannot put an undecodable message on its broker",
			a.Name())
	}
	// Plain ASCII survives whatever form the adapter keeps an undecodable
	// message in, such as a JSON object of a Redis entry's fields.
	raw := []byte("undecodable-" + watermill.NewShortUUID())

	checkDecodeEntry(t, cfg, a, func(eventType string) {
		cfg.PublishRaw(t, a, eventType, raw)
	}, raw, false)
}
