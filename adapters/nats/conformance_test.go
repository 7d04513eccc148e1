package nats

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/conformance"
	"github.com/deadletter/deadletter/core"
)

// TestConformance runs deadletter's adapter suite on JetStream. Each
// adapter gets a prefix of its own; Reopen opens a second adapter on it.
// With MaxInFlight 1 a subscription hands out messages in stream order.
func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Config{
		NewAdapter: func(t testing.TB) core.Adapter { return newTestAdapter(t) },
		Reopen:     func(t testing.TB, a core.Adapter) core.Adapter { return reopen(t, a.(*Adapter)) },
		NewOrderedAdapter: func(t testing.TB) core.Adapter {
			return newTestAdapter(t, func(c *Config) { c.MaxInFlight = 1 })
		},
		PublishRaw: publishUndecodable,
	})
}

// publishUndecodable publishes raw as the data of a message whose header
// holds an escape that the subscriber cannot decode.
func publishUndecodable(t testing.TB, a core.Adapter, eventType string, raw []byte) {
	t.Helper()
	adapter := a.(*Adapter)
	msg := nats.NewMsg(adapter.names.eventSubject(eventType))
	msg.Header.Set(uuidHeader, `broken\q`)
	msg.Data = raw

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := adapter.js.PublishMsg(ctx, msg)
	require.NoError(t, err)
}
