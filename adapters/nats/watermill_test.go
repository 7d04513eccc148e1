package nats

import (
	"fmt"
	"hash/fnv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/require"
)

// TestWatermillPubSub runs Watermill's own publisher and subscriber suite.
// Order is not guaranteed because a nacked message must not hold back the
// ones behind it; delivery is at least once.
func TestWatermillPubSub(t *testing.T) {
	a := newTestAdapter(t, func(c *Config) { c.CloseTimeout = time.Second })
	publisher := keptOpenPublisher{a.Publisher()}

	withGroup := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		sub, err := a.Subscriber(group)
		require.NoError(t, err)
		return publisher, sub
	}
	// Subscribers of one Watermill test share a handler, so that one
	// created after another was closed continues where it stopped.
	withoutGroup := func(t *testing.T) (message.Publisher, message.Subscriber) {
		h := fnv.New64a()
		h.Write([]byte(t.Name()))
		return withGroup(t, fmt.Sprintf("wm_%016x", h.Sum64()))
	}

	features := tests.Features{
		ConsumerGroups:      true,
		ExactlyOnceDelivery: false,
		GuaranteedOrder:     false,
		Persistent:          true,
	}
	tests.TestPubSub(t, features, withoutGroup, withGroup)
}

// keptOpenPublisher hands the adapter's shared publisher to a suite that
// closes what it is given.
type keptOpenPublisher struct{ message.Publisher }

func (keptOpenPublisher) Close() error { return nil }
