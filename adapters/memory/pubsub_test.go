package memory

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/require"
)

// TestWatermillPubSub runs Watermill's own pub/sub suite. Every publisher and
// subscriber it creates is on one Adapter, so they behave as instances of one
// broker: events persist across them. Handler groups start at the oldest
// retained event, but the suite's plain subscribers share one group, so a
// new one does not receive events another has already handled.
func TestWatermillPubSub(t *testing.T) {
	// The suite expects a message's context to end within 15 s of closing
	// a subscriber that never settled it.
	adapter, err := New(Config{StreamMaxLen: -1, CloseTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, adapter.Close()) })

	pubSub := func(t *testing.T, handler string) (message.Publisher, message.Subscriber) {
		sub, err := adapter.Subscriber(handler)
		require.NoError(t, err)
		return newPublisher(adapter.broker), sub
	}

	tests.TestPubSub(t,
		tests.Features{
			ConsumerGroups:                   true,
			ExactlyOnceDelivery:              false,
			GuaranteedOrder:                  false,
			Persistent:                       true,
			RequireSingleInstance:            false,
			NewSubscriberReceivesOldMessages: false,
		},
		func(t *testing.T) (message.Publisher, message.Subscriber) { return pubSub(t, "watermill_suite") },
		pubSub,
	)
}
