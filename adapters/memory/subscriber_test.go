package memory_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/deadletter/deadletter/adapters/memory"
	"github.com/deadletter/deadletter/core"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const waitTimeout = 5 * time.Second

// newAdapter returns an adapter for cfg, closed when the test ends. Its
// subscribers wait 100 ms for unsettled messages at close unless cfg sets
// a CloseTimeout.
func newAdapter(t *testing.T, cfg memory.Config) *memory.Adapter {
	t.Helper()
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = 100 * time.Millisecond
	}
	adapter, err := memory.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, adapter.Close()) })
	return adapter
}

func subscribe(t *testing.T, adapter *memory.Adapter, handler, topic string) (message.Subscriber, <-chan *message.Message) {
	t.Helper()
	sub, err := adapter.Subscriber(handler)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sub.Close()) })
	messages, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	return sub, messages
}

func publish(t *testing.T, adapter *memory.Adapter, topic string, uuids ...string) {
	t.Helper()
	for _, uuid := range uuids {
		msg := message.NewMessage(uuid, []byte("payload of "+uuid))
		msg.Metadata.Set("origin", "test")
		require.NoError(t, adapter.Publisher().Publish(topic, msg))
	}
}

func receive(t *testing.T, messages <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case msg, ok := <-messages:
		require.True(t, ok, "messages channel closed while a message was expected")
		return msg
	case <-time.After(waitTimeout):
		require.FailNow(t, "no message within "+waitTimeout.String())
		return nil
	}
}

func requireNoMessage(t *testing.T, messages <-chan *message.Message, within time.Duration) {
	t.Helper()
	select {
	case msg := <-messages:
		require.FailNowf(t, "unexpected message", "received %s (delivery %s)",
			msg.UUID, msg.Metadata.Get(core.MetadataDeliveryCount))
	case <-time.After(within):
	}
}

func requireClosed(t *testing.T, messages <-chan *message.Message) {
	t.Helper()
	select {
	case msg, ok := <-messages:
		require.False(t, ok, "messages channel still open, received %v", msg)
	case <-time.After(waitTimeout):
		require.FailNow(t, "messages channel not closed within "+waitTimeout.String())
	}
}

func deliveryCount(t *testing.T, msg *message.Message) int {
	t.Helper()
	count, err := strconv.Atoi(msg.Metadata.Get(core.MetadataDeliveryCount))
	require.NoError(t, err, "delivery count metadata %q", msg.Metadata.Get(core.MetadataDeliveryCount))
	return count
}

func TestNew(t *testing.T) {
	t.Run("AcceptsZeroConfig", func(t *testing.T) {
		adapter, err := memory.New(memory.Config{})
		require.NoError(t, err)
		require.Equal(t, "memory", adapter.Name())
		require.NoError(t, adapter.Close())
	})

	t.Run("RejectsNegativeCaps", func(t *testing.T) {
		_, err := memory.New(memory.Config{StreamMaxLen: -2})
		require.ErrorIs(t, err, core.ErrInvalidConfig)
		_, err = memory.New(memory.Config{DLQMaxLen: -2})
		require.ErrorIs(t, err, core.ErrInvalidConfig)
	})

	t.Run("DeclaresCapabilities", func(t *testing.T) {
		adapter := newAdapter(t, memory.Config{})
		require.Equal(t, core.Capabilities{
			Redelivery: true, CompetingConsumers: true, RetryState: true, Durable: false,
		}, adapter.Capabilities())
	})
}

func TestSubscriber(t *testing.T) {
	t.Run("SetsMetadataOnFirstDelivery", func(t *testing.T) {
		adapter := newAdapter(t, memory.Config{})
		publish(t, adapter, "patient.registered", "a")
		_, messages := subscribe(t, adapter, "mailer", "patient.registered")

		msg := receive(t, messages)
		require.Equal(t, "a", msg.UUID)
		require.Equal(t, "payload of a", string(msg.Payload))
		require.Equal(t, "test", msg.Metadata.Get("origin"))
		require.Equal(t, 1, deliveryCount(t, msg))
		require.Equal(t, "memory:patient.registered", msg.Metadata.Get(core.MetadataSourceStream))
		require.Equal(t, "1", msg.Metadata.Get(core.MetadataSourceID))
		msg.Ack()
	})

	t.Run("LateHandlerReceivesEarlierEvents", func(t *testing.T) {
		adapter := newAdapter(t, memory.Config{})
		_, first := subscribe(t, adapter, "mailer", "patient.registered")
		publish(t, adapter, "patient.registered", "a", "b")
		receive(t, first).Ack()
		receive(t, first).Ack()

		_, late := subscribe(t, adapter, "billing", "patient.registered")
		require.ElementsMatch(t, []string{"a", "b"}, []string{receive(t, late).UUID, receive(t, late).UUID})
	})

	t.Run("EmitsWithoutWaitingForAck", func(t *testing.T) {
		adapter := newAdapter(t, memory.Config{})
		publish(t, adapter, "patient.registered", "a", "b", "c")
		_, messages := subscribe(t, adapter, "mailer", "patient.registered")

		var unacked []*message.Message
		for range 3 {
			unacked = append(unacked, receive(t, messages))
		}
		for _, msg := range unacked {
			msg.Ack()
		}
	})

	t.Run("RedeliversNackAfterRetryAfter", func(t *testing.T) {
		adapter := newAdapter(t, memory.Config{})
		publish(t, adapter, "patient.registered", "a")
		_, messages := subscribe(t, adapter, "mailer", "patient.registered")

		msg := receive(t, messages)
		const pause = 80 * time.Millisecond
		msg.Metadata.Set(core.MetadataRetryAfter, pause.String())
		nackedAt := time.Now()
		msg.Nack()

		again := receive(t, messages)
		require.GreaterOrEqual(t, time.Since(nackedAt), pause, "redelivered before the retry pause")
		require.Equal(t, "a", again.UUID)
		require.Equal(t, 2, deliveryCount(t, again))
		require.Empty(t, again.Metadata.Get(core.MetadataRetryAfter), "retry pause carried to the redelivery")
		again.Ack()
	})

	t.Run("RedeliversNackAtOnceWithoutRetryAfter", func(t *testing.T) {
		adapter := newAdapter(t, memory.Config{})
		publish(t, adapter, "patient.registered", "a")
		_, messages := subscribe(t, adapter, "mailer", "patient.registered")

		for want := 1; want <= 3; want++ {
			msg := receive(t, messages)
			require.Equal(t, want, deliveryCount(t, msg))
			msg.Nack()
		}
		receive(t, messages).Ack()
	})

	t.Run("KeepsRetryStateAcrossRedelivery", func(t *testing.T) {
		adapter := newAdapter(t, memory.Config{})
		publish(t, adapter, "patient.registered", "a")
		_, messages := subscribe(t, adapter, "mailer", "patient.registered")

		state := map[string]string{
			core.MetadataLastError:         "mail server timed out",
			core.MetadataErrorType:         string(core.ErrorTypeTimeout),
			core.MetadataFirstFailedAt:     "2026-01-02T03:04:05.000006Z",
			core.MetadataDeadLetterPending: "4",
		}
		msg := receive(t, messages)
		for key, value := range state {
			msg.Metadata.Set(key, value)
		}
		msg.Nack()

		again := receive(t, messages)
		for key, value := range state {
			require.Equal(t, value, again.Metadata.Get(key), "metadata %s after redelivery", key)
		}

		// A nack without a key clears it, so stale state does not linger.
		delete(again.Metadata, core.MetadataDeadLetterPending)
		again.Nack()
		third := receive(t, messages)
		require.Empty(t, third.Metadata.Get(core.MetadataDeadLetterPending))
		require.Equal(t, "mail server timed out", third.Metadata.Get(core.MetadataLastError))
		third.Ack()
	})

	t.Run("RetryPauseDoesNotBlockOtherEvents", func(t *testing.T) {
		adapter := newAdapter(t, memory.Config{})
		publish(t, adapter, "patient.registered", "slow")
		_, messages := subscribe(t, adapter, "mailer", "patient.registered")

		msg := receive(t, messages)
		msg.Metadata.Set(core.MetadataRetryAfter, time.Hour.String())
		msg.Nack()

		publish(t, adapter, "patient.registered", "b", "c")
		require.Equal(t, "b", receive(t, messages).UUID)
		require.Equal(t, "c", receive(t, messages).UUID)
	})

	t.Run("HandlersEachReceiveEveryEvent", func(t *testing.T) {
		adapter := newAdapter(t, memory.Config{})
		_, mailer := subscribe(t, adapter, "mailer", "patient.registered")
		_, billing := subscribe(t, adapter, "billing", "patient.registered")
		publish(t, adapter, "patient.registered", "a")

		mailerMsg := receive(t, mailer)
		mailerMsg.Metadata.Set(core.MetadataLastError, "mailer failed")
		mailerMsg.Nack()
		billingMsg := receive(t, billing)
		require.Equal(t, 1, deliveryCount(t, billingMsg), "one handler's nack counted for another")
		require.Empty(t, billingMsg.Metadata.Get(core.MetadataLastError))
		billingMsg.Ack()
		require.Equal(t, 2, deliveryCount(t, receive(t, mailer)))
	})

	t.Run("SubscribersOfHandlerShareEvents", func(t *testing.T) {
		adapter := newAdapter(t, memory.Config{})
		_, first := subscribe(t, adapter, "mailer", "patient.registered")
		_, second := subscribe(t, adapter, "mailer", "patient.registered")

		const events = 50
		for i := range events {
			publish(t, adapter, "patient.registered", strconv.Itoa(i))
		}

		seen := map[string]int{}
		perSubscriber := [2]int{}
		for range events {
			select {
			case msg := <-first:
				seen[msg.UUID]++
				perSubscriber[0]++
				msg.Ack()
			case msg := <-second:
				seen[msg.UUID]++
				perSubscriber[1]++
				msg.Ack()
			case <-time.After(waitTimeout):
				require.FailNow(t, "events missing", "received %d of %d", len(seen), events)
			}
		}
		require.Len(t, seen, events)
		for uuid, times := range seen {
			require.Equal(t, 1, times, "event %s delivered %d times", uuid, times)
		}
		requireNoMessage(t, first, 50*time.Millisecond)
		requireNoMessage(t, second, 0)
		require.Positive(t, perSubscriber[0]+perSubscriber[1])
	})

	t.Run("CloseHandsUnackedToOtherSubscriber", func(t *testing.T) {
		adapter := newAdapter(t, memory.Config{})
		publish(t, adapter, "patient.registered", "a")
		closing, messages := subscribe(t, adapter, "mailer", "patient.registered")

		msg := receive(t, messages)
		require.NoError(t, closing.Close())
		requireClosed(t, messages)
		select {
		case <-msg.Context().Done():
		default:
			require.FailNow(t, "message context still live after subscriber close")
		}

		_, other := subscribe(t, adapter, "mailer", "patient.registered")
		again := receive(t, other)
		require.Equal(t, "a", again.UUID)
		require.Equal(t, 2, deliveryCount(t, again))
		again.Ack()

		require.True(t, msg.Ack(), "late ack of the first delivery")
		requireNoMessage(t, other, 50*time.Millisecond)
	})

	t.Run("ClosesChannelOnContextCancel", func(t *testing.T) {
		adapter := newAdapter(t, memory.Config{})
		sub, err := adapter.Subscriber("mailer")
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, sub.Close()) })

		ctx, cancel := context.WithCancel(context.Background())
		messages, err := sub.Subscribe(ctx, "patient.registered")
		require.NoError(t, err)
		cancel()
		requireClosed(t, messages)
	})

	t.Run("AckEndsMessageContext", func(t *testing.T) {
		adapter := newAdapter(t, memory.Config{})
		publish(t, adapter, "patient.registered", "a")
		_, messages := subscribe(t, adapter, "mailer", "patient.registered")

		msg := receive(t, messages)
		msg.Ack()
		select {
		case <-msg.Context().Done():
		case <-time.After(waitTimeout):
			require.FailNow(t, "message context still live after ack")
		}
	})

	t.Run("RejectsInvalidTopic", func(t *testing.T) {
		adapter := newAdapter(t, memory.Config{})
		sub, err := adapter.Subscriber("mailer")
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, sub.Close()) })

		_, err = sub.Subscribe(context.Background(), "events:patient registered")
		require.ErrorIs(t, err, core.ErrInvalidConfig)
	})

	t.Run("RejectsSubscribeAfterClose", func(t *testing.T) {
		adapter := newAdapter(t, memory.Config{})
		sub, err := adapter.Subscriber("mailer")
		require.NoError(t, err)
		require.NoError(t, sub.Close())

		_, err = sub.Subscribe(context.Background(), "patient.registered")
		require.ErrorIs(t, err, core.ErrClosed)
	})

	t.Run("RejectsEmptyHandler", func(t *testing.T) {
		adapter := newAdapter(t, memory.Config{})
		_, err := adapter.Subscriber("")
		require.ErrorIs(t, err, core.ErrInvalidConfig)
	})
}

func TestPublisher(t *testing.T) {
	t.Run("StoresCopies", func(t *testing.T) {
		adapter := newAdapter(t, memory.Config{})
		msg := message.NewMessage("a", []byte("original"))
		require.NoError(t, adapter.Publisher().Publish("patient.registered", msg))
		msg.Payload[0] = 'X'
		msg.Metadata.Set("late", "yes")

		_, messages := subscribe(t, adapter, "mailer", "patient.registered")
		got := receive(t, messages)
		require.Equal(t, "original", string(got.Payload))
		require.Empty(t, got.Metadata.Get("late"))
		got.Ack()
	})

	t.Run("TrimsTopicAtStreamMaxLen", func(t *testing.T) {
		adapter := newAdapter(t, memory.Config{StreamMaxLen: 2})
		publish(t, adapter, "patient.registered", "a", "b", "c")

		_, messages := subscribe(t, adapter, "mailer", "patient.registered")
		require.Equal(t, "b", receive(t, messages).UUID)
		require.Equal(t, "c", receive(t, messages).UUID)
		requireNoMessage(t, messages, 20*time.Millisecond)
	})

	t.Run("RejectsInvalidTopic", func(t *testing.T) {
		adapter := newAdapter(t, memory.Config{})
		err := adapter.Publisher().Publish("", message.NewMessage("a", nil))
		require.ErrorIs(t, err, core.ErrInvalidEvent)
	})

	t.Run("RejectsPublishAfterClose", func(t *testing.T) {
		adapter, err := memory.New(memory.Config{})
		require.NoError(t, err)
		sub, err := adapter.Subscriber("mailer")
		require.NoError(t, err)
		messages, err := sub.Subscribe(context.Background(), "patient.registered")
		require.NoError(t, err)

		require.NoError(t, adapter.Close())
		requireClosed(t, messages)
		err = adapter.Publisher().Publish("patient.registered", message.NewMessage("a", nil))
		require.ErrorIs(t, err, core.ErrClosed)
		_, err = adapter.Subscriber("mailer")
		require.ErrorIs(t, err, core.ErrClosed)
	})
}
