package memory_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/deadletter/deadletter/adapters/memory"
)

// BenchmarkPublishAck measures one event's way from Publish to its
// subscriber's Ack.
func BenchmarkPublishAck(b *testing.B) {
	adapter, err := memory.New(memory.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer adapter.Close()
	sub, err := adapter.Subscriber("mailer")
	if err != nil {
		b.Fatal(err)
	}
	messages, err := sub.Subscribe(context.Background(), "patient.registered")
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"event_type":"patient.registered"}`)

	for b.Loop() {
		if err := adapter.Publisher().Publish("patient.registered", message.NewMessage("a", payload)); err != nil {
			b.Fatal(err)
		}
		(<-messages).Ack()
	}
}
