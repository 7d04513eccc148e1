package conformance

import (
	"fmt"
	"hash/fnv"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/require"
)

// watermillFeatures returns the features of Watermill's suite that every
// adapter has, whatever its capabilities:
//   - consumer groups, because Subscriber takes a handler name and
//     subscribers of different handlers each receive every message;
//   - persistence across subscriber instances, because all publishers and
//     subscribers of one run come from one adapter, and a message left
//     unacknowledged by a closed subscriber must reach the next one;
//   - neither exactly-once delivery nor guaranteed order, because a nacked
//     message must not hold back the messages behind it.
func watermillFeatures() tests.Features {
	return tests.Features{
		ConsumerGroups:      true,
		ExactlyOnceDelivery: false,
		GuaranteedOrder:     false,
		Persistent:          true,
	}
}

// runWatermill runs Watermill's suite with publishers and subscribers of one
// adapter. The suite closes each publisher it gets, but an adapter's
// publisher is shared until the adapter closes, so the suite gets a wrapper
// whose Close does nothing.
func runWatermill(t *testing.T, cfg Config) {
	adapter := cfg.NewAdapter(t)
	publisher := sharedPublisher{adapter.Publisher()}

	withGroup := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		subscriber, err := adapter.Subscriber(group)
		require.NoError(t, err, "Subscriber(%q) must succeed for any valid handler name", group)
		return publisher, subscriber
	}

	// Subscribers created without a group within one Watermill test share
	// a group named after the test, so that a subscriber created after
	// another one was closed continues where it stopped.
	withoutGroup := func(t *testing.T) (message.Publisher, message.Subscriber) {
		return withGroup(t, groupForTest(t))
	}

	tests.TestPubSub(t, watermillFeatures(), withoutGroup, withGroup)
}

// runWatermillOrdered runs the Watermill tests that need guaranteed order on
// the adapter from Config.NewOrderedAdapter.
func runWatermillOrdered(t *testing.T, cfg Config) {
	if cfg.NewOrderedAdapter == nil {
		t.Skip("Config.NewOrderedAdapter is nil, so Watermill's order tests cannot run")
	}
	adapter := cfg.NewOrderedAdapter(t)
	publisher := sharedPublisher{adapter.Publisher()}
	constructor := func(t *testing.T) (message.Publisher, message.Subscriber) {
		subscriber, err := adapter.Subscriber(groupForTest(t))
		require.NoError(t, err, "Subscriber of the ordered adapter must succeed")
		return publisher, subscriber
	}

	// Order holds for one subscriber: several subscribers of one handler
	// share its events and finish them in any order.
	features := watermillFeatures()
	features.GuaranteedOrder = true
	features.GuaranteedOrderWithSingleSubscriber = true
	ordered := map[string]func(*testing.T, tests.TestContext, tests.PubSubConstructor){
		"TestPublishSubscribeInOrder": tests.TestPublishSubscribeInOrder,
		"TestNoAck":                   tests.TestNoAck,
	}
	for name, test := range ordered {
		t.Run(name, func(t *testing.T) {
			test(t, tests.TestContext{TestID: tests.NewTestID(), Features: features}, constructor)
		})
	}
}

// groupForTest returns a handler name unique to the running Watermill test.
func groupForTest(t *testing.T) string {
	h := fnv.New64a()
	h.Write([]byte(t.Name()))
	return fmt.Sprintf("wm_%016x", h.Sum64())
}

// sharedPublisher hands the adapter's publisher to code that closes what it
// is given.
type sharedPublisher struct{ message.Publisher }

// Close does nothing, because the adapter closes its own publisher.
func (sharedPublisher) Close() error { return nil }
