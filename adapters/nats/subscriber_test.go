package nats

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/core"
)

func TestPublishSubscribe(t *testing.T) {
	t.Run("RoundTripsPayloadAndMetadata", func(t *testing.T) {
		a := newTestAdapter(t)
		ev := newTestEvent(t, "patient.registered")
		msg := newEventMessage(t, ev)
		msg.Metadata.Set("trace", "line one\nline two\\ with \ttab ")
		msg.Metadata.Set(core.MetadataReplayCount, "2")

		ch := subscribe(t, a, "send_welcome_email", "patient.registered")
		require.NoError(t, a.Publisher().Publish("patient.registered", msg))

		got := receive(t, ch)
		require.True(t, got.Ack())
		require.Equal(t, msg.UUID, got.UUID)
		require.Equal(t, string(msg.Payload), string(got.Payload))
		require.Equal(t, "line one\nline two\\ with \ttab ", got.Metadata.Get("trace"))
		require.Equal(t, "2", got.Metadata.Get(core.MetadataReplayCount))
		require.Equal(t, "1", got.Metadata.Get(core.MetadataDeliveryCount))
		require.Equal(t, a.names.eventsStream, got.Metadata.Get(core.MetadataSourceStream))
		require.Equal(t, "1", got.Metadata.Get(core.MetadataSourceID))
	})

	t.Run("RejectsInvalidEventType", func(t *testing.T) {
		a := newTestAdapter(t)
		err := a.Publisher().Publish("patient registered", message.NewMessage("1", []byte("{}")))
		require.ErrorIs(t, err, core.ErrInvalidEvent)
	})

	t.Run("RejectsReservedMetadataKey", func(t *testing.T) {
		a := newTestAdapter(t)
		msg := message.NewMessage("1", []byte("{}"))
		msg.Metadata.Set("Nats-Msg-Id", "x")
		require.Error(t, a.Publisher().Publish("patient.registered", msg))
	})

	t.Run("DeliversEveryHandlerItsOwnCopy", func(t *testing.T) {
		a := newTestAdapter(t)
		mail := subscribe(t, a, "send_welcome_email", "patient.registered")
		billing := subscribe(t, a, "create_billing_account", "patient.registered")
		msg := newEventMessage(t, newTestEvent(t, "patient.registered"))
		require.NoError(t, a.Publisher().Publish("patient.registered", msg))

		for _, ch := range []<-chan *message.Message{mail, billing} {
			got := receive(t, ch)
			require.Equal(t, msg.UUID, got.UUID)
			got.Ack()
		}
	})

	t.Run("GivesOneHandlerSeveralEventTypes", func(t *testing.T) {
		a := newTestAdapter(t)
		sub, err := a.Subscriber("audit")
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, sub.Close()) })
		registered, err := sub.Subscribe(context.Background(), "patient.registered")
		require.NoError(t, err)
		booked, err := sub.Subscribe(context.Background(), "appointment.booked")
		require.NoError(t, err)

		require.NoError(t, a.Publisher().Publish("patient.registered", message.NewMessage("r", []byte("{}"))))
		require.NoError(t, a.Publisher().Publish("appointment.booked", message.NewMessage("b", []byte("{}"))))
		require.Equal(t, "r", receive(t, registered).UUID)
		require.Equal(t, "b", receive(t, booked).UUID)
	})
}

func TestNack(t *testing.T) {
	t.Run("RedeliversAfterPauseWithoutBlocking", func(t *testing.T) {
		a := newTestAdapter(t)
		ch := subscribe(t, a, "index_patient", "patient.registered")
		first := newEventMessage(t, newTestEvent(t, "patient.registered"))
		second := newEventMessage(t, newTestEvent(t, "patient.registered"))
		require.NoError(t, a.Publisher().Publish("patient.registered", first))

		got := receive(t, ch)
		require.Equal(t, first.UUID, got.UUID)
		const pause = 300 * time.Millisecond
		got.Metadata.Set(core.MetadataRetryAfter, pause.String())
		got.Metadata.Set(core.MetadataLastError, "mail server timed out\nat line 3")
		got.Metadata.Set(core.MetadataErrorType, string(core.ErrorTypeFailure))
		got.Metadata.Set(core.MetadataFirstFailedAt, "2024-05-01T10:00:00.000000Z")
		nackedAt := time.Now()
		got.Nack()

		// The second event arrives while the first waits for its retry.
		require.NoError(t, a.Publisher().Publish("patient.registered", second))
		got = receive(t, ch)
		require.Equal(t, second.UUID, got.UUID, "a message published after the nack must not wait behind it")
		require.Less(t, time.Since(nackedAt), pause)
		got.Ack()

		got = receive(t, ch)
		require.Equal(t, first.UUID, got.UUID)
		require.GreaterOrEqual(t, time.Since(nackedAt), pause)
		require.Equal(t, "2", got.Metadata.Get(core.MetadataDeliveryCount))
		require.Equal(t, "mail server timed out\nat line 3", got.Metadata.Get(core.MetadataLastError))
		require.Equal(t, string(core.ErrorTypeFailure), got.Metadata.Get(core.MetadataErrorType))
		require.Equal(t, "2024-05-01T10:00:00.000000Z", got.Metadata.Get(core.MetadataFirstFailedAt))
		require.Empty(t, got.Metadata.Get(core.MetadataRetryAfter))
		got.Ack()
	})

	t.Run("CountsEveryDelivery", func(t *testing.T) {
		a := newTestAdapter(t)
		ch := subscribe(t, a, "index_patient", "patient.registered")
		require.NoError(t, a.Publisher().Publish("patient.registered", message.NewMessage("m", []byte("{}"))))

		for delivery := 1; delivery <= 4; delivery++ {
			got := receive(t, ch)
			require.Equal(t, strconv.Itoa(delivery), got.Metadata.Get(core.MetadataDeliveryCount))
			if delivery < 4 {
				got.Nack()
			} else {
				got.Ack()
			}
		}
	})

	t.Run("ClearsRetryStateOnAck", func(t *testing.T) {
		a := newTestAdapter(t)
		ch := subscribe(t, a, "index_patient", "patient.registered")
		require.NoError(t, a.Publisher().Publish("patient.registered", message.NewMessage("m", []byte("{}"))))

		got := receive(t, ch)
		got.Metadata.Set(core.MetadataLastError, "boom")
		got.Nack()
		got = receive(t, ch)
		require.Equal(t, "boom", got.Metadata.Get(core.MetadataLastError))
		got.Ack()

		subject := a.retryState.subject("index_patient", "patient.registered", 1)
		require.Eventually(t, func() bool {
			_, found, err := a.retryState.load(context.Background(), subject)
			return err == nil && !found
		}, waitTimeout, 10*time.Millisecond, "the retry state must be purged once the message is acknowledged")
	})
}

func TestInProgress(t *testing.T) {
	t.Run("KeepsSlowHandlerMessage", func(t *testing.T) {
		const ackWait = 300 * time.Millisecond
		a := newTestAdapter(t, func(c *Config) { c.AckWait = ackWait })
		ch := subscribe(t, a, "slow", "report.requested")
		require.NoError(t, a.Publisher().Publish("report.requested", message.NewMessage("m", []byte("{}"))))

		got := receive(t, ch)
		select {
		case again := <-ch:
			t.Fatalf("message %s delivered again while its handler was running", again.UUID)
		case <-time.After(3 * ackWait):
		}
		got.Ack()
	})
	t.Run("KeepsMessagesWaitingForASlot", func(t *testing.T) {
		// Slow handlers with few slots and a pull batch larger than the
		// slots: messages waiting for a slot must not outlive AckWait in
		// the client's buffer and be delivered twice.
		const (
			ackWait = 300 * time.Millisecond
			events  = 200
			slots   = 20
		)
		a := newTestAdapter(t, func(c *Config) { c.AckWait = ackWait; c.MaxInFlight = slots; c.BatchSize = 100 })
		ch := subscribe(t, a, "slow", "report.requested")
		msgs := make([]*message.Message, events)
		for i := range msgs {
			msgs[i] = message.NewMessage(strconv.Itoa(i), []byte("{}"))
		}
		require.NoError(t, a.Publisher().Publish("report.requested", msgs...))

		seen := map[string]int{}
		for len(seen) < events {
			got := receive(t, ch)
			seen[got.UUID]++
			require.Equal(t, 1, seen[got.UUID], "message %s delivered twice", got.UUID)
			time.AfterFunc(ackWait/3, func() { got.Ack() })
		}
	})
	t.Run("KeepsMessagesWaitingForHandoff", func(t *testing.T) {
		// A reader that takes one message at a time keeps the others
		// waiting to be handed out, with slots free: they must not outlive
		// AckWait there and be delivered twice.
		const (
			ackWait = 300 * time.Millisecond
			events  = 4
		)
		a := newTestAdapter(t, func(c *Config) { c.AckWait = ackWait })
		ch := subscribe(t, a, "slow", "report.requested")
		msgs := make([]*message.Message, events)
		for i := range msgs {
			msgs[i] = message.NewMessage(strconv.Itoa(i), []byte("{}"))
		}
		require.NoError(t, a.Publisher().Publish("report.requested", msgs...))

		seen := map[string]int{}
		for range events {
			got := receive(t, ch)
			seen[got.UUID]++
			require.Equal(t, 1, seen[got.UUID], "message %s delivered twice", got.UUID)
			time.Sleep(ackWait + ackWait/2)
			got.Ack()
		}
		select {
		case again := <-ch:
			t.Fatalf("message %s delivered again after it was acknowledged", again.UUID)
		case <-time.After(2 * ackWait):
		}
	})
}

func TestCompetingConsumers(t *testing.T) {
	const events = 200
	a := newTestAdapter(t, func(c *Config) { c.BatchSize = 5; c.MaxInFlight = 5 })
	b := reopen(t, a)

	var (
		mu       sync.Mutex
		seen     = map[string]int{}
		byWorker = map[string]int{}
		done     = make(chan struct{})
	)
	consume := func(worker string, ch <-chan *message.Message) {
		for msg := range ch {
			mu.Lock()
			seen[msg.UUID]++
			byWorker[worker]++
			if len(seen) == events {
				select {
				case <-done:
				default:
					close(done)
				}
			}
			mu.Unlock()
			msg.Ack()
		}
	}
	go consume("a", subscribe(t, a, "index_patient", "patient.registered"))
	go consume("b", subscribe(t, b, "index_patient", "patient.registered"))

	msgs := make([]*message.Message, events)
	for i := range msgs {
		msgs[i] = message.NewMessage(strconv.Itoa(i), []byte("{}"))
	}
	require.NoError(t, a.Publisher().Publish("patient.registered", msgs...))

	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("not every event was delivered")
	}
	mu.Lock()
	defer mu.Unlock()
	for id, n := range seen {
		require.Equal(t, 1, n, "event %s must be delivered once across the subscribers", id)
	}
	require.Positive(t, byWorker["a"], "the first subscriber must get a share")
	require.Positive(t, byWorker["b"], "the second subscriber must get a share")
}

func TestRestart(t *testing.T) {
	t.Run("ContinuesDeliveryCount", func(t *testing.T) {
		a := newTestAdapter(t)
		if version := a.conn.ConnectedServerVersion(); !serverAtLeast(version, 2, 10) {
			t.Skipf("nats-server %s restarts the delivery count of a message redelivered while its "+
				"subscriber closes; this needs 2.10 or later", version)
		}
		sub, err := a.Subscriber("index_patient")
		require.NoError(t, err)
		ch, err := sub.Subscribe(context.Background(), "patient.registered")
		require.NoError(t, err)
		require.NoError(t, a.Publisher().Publish("patient.registered", message.NewMessage("m", []byte("{}"))))

		for range 2 {
			got := receive(t, ch)
			got.Metadata.Set(core.MetadataLastError, "database locked")
			got.Nack()
		}
		require.NoError(t, sub.Close())
		require.NoError(t, a.Close())

		b := reopen(t, a)
		got := receive(t, subscribe(t, b, "index_patient", "patient.registered"))
		require.Equal(t, "m", got.UUID)
		require.Equal(t, "3", got.Metadata.Get(core.MetadataDeliveryCount))
		require.Equal(t, "database locked", got.Metadata.Get(core.MetadataLastError))
		got.Ack()
	})

	t.Run("GivesBackBufferedMessagesOnClose", func(t *testing.T) {
		a := newTestAdapter(t, func(c *Config) { c.MaxInFlight = 1 })
		msgs := make([]*message.Message, 20)
		for i := range msgs {
			msgs[i] = message.NewMessage(strconv.Itoa(i), []byte("{}"))
		}
		require.NoError(t, a.Publisher().Publish("patient.registered", msgs...))

		sub, err := a.Subscriber("index_patient")
		require.NoError(t, err)
		ch, err := sub.Subscribe(context.Background(), "patient.registered")
		require.NoError(t, err)
		receive(t, ch).Ack()
		require.NoError(t, sub.Close())

		// AckWait is 30 s, so the rest arrive in time only if the closed
		// subscriber gave them back.
		ch = subscribe(t, reopen(t, a), "index_patient", "patient.registered")
		for range len(msgs) - 1 {
			receive(t, ch).Ack()
		}
	})
}

func TestDecodeError(t *testing.T) {
	a := newTestAdapter(t)
	ch := subscribe(t, a, "index_patient", "patient.registered")

	raw := nats.NewMsg(a.names.eventSubject("patient.registered"))
	raw.Header.Set("broken", `bad \q escape`)
	raw.Data = []byte("not an event")
	_, err := a.js.PublishMsg(context.Background(), raw)
	require.NoError(t, err)
	require.NoError(t, a.Publisher().Publish("patient.registered", message.NewMessage("good", []byte("{}"))))

	// Several messages are in flight at once, so they may arrive in either
	// order; both must arrive.
	byPayload := map[string]*message.Message{}
	for range 2 {
		got := receive(t, ch)
		byPayload[string(got.Payload)] = got
		got.Ack()
	}

	broken := byPayload["not an event"]
	require.NotNil(t, broken, "the undecodable message must be delivered")
	require.Contains(t, broken.Metadata.Get(core.MetadataDecodeError), "broken")
	require.Equal(t, "1", broken.Metadata.Get(core.MetadataDeliveryCount))

	good := byPayload["{}"]
	require.NotNil(t, good, "the message after an undecodable one must be delivered")
	require.Equal(t, "good", good.UUID)
	require.Empty(t, good.Metadata.Get(core.MetadataDecodeError))
}

func TestSubscriberClose(t *testing.T) {
	t.Run("ClosesChannelsAndRejectsSubscribe", func(t *testing.T) {
		a := newTestAdapter(t)
		sub, err := a.Subscriber("index_patient")
		require.NoError(t, err)
		ch, err := sub.Subscribe(context.Background(), "patient.registered")
		require.NoError(t, err)

		require.NoError(t, sub.Close())
		require.NoError(t, sub.Close())
		_, open := <-ch
		require.False(t, open)
		_, err = sub.Subscribe(context.Background(), "patient.registered")
		require.ErrorIs(t, err, core.ErrClosed)
	})

	t.Run("EndsWithSubscribeContext", func(t *testing.T) {
		a := newTestAdapter(t)
		sub, err := a.Subscriber("index_patient")
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, sub.Close()) })
		ctx, cancel := context.WithCancel(context.Background())
		ch, err := sub.Subscribe(ctx, "patient.registered")
		require.NoError(t, err)

		cancel()
		select {
		case _, open := <-ch:
			require.False(t, open)
		case <-time.After(waitTimeout):
			t.Fatal("channel still open after the subscribe context ended")
		}
	})

	t.Run("RejectsConsumerOfOtherEventType", func(t *testing.T) {
		a := newTestAdapter(t)
		_, err := a.events.CreateConsumer(context.Background(), consumerConfigForTest(a, "x@a~b", "other.type"))
		require.NoError(t, err)
		sub, err := a.Subscriber("x")
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, sub.Close()) })
		_, err = sub.Subscribe(context.Background(), "a.b")
		require.ErrorIs(t, err, ErrNameConflict)
	})
}

func TestHeadersCannotForgeDeliveryState(t *testing.T) {
	a := newTestAdapter(t)
	ch := subscribe(t, a, "index_patient", "patient.registered")

	forged := message.NewMessage("forged", []byte("{}"))
	forged.Metadata.Set(core.MetadataDeadLetterPending, "4")
	forged.Metadata.Set(core.MetadataLastError, "made up")
	forged.Metadata.Set("trace", "abc")
	require.NoError(t, a.Publisher().Publish("patient.registered", forged))

	got := receive(t, ch)
	require.Empty(t, got.Metadata.Get(core.MetadataDeadLetterPending), "a publisher must not set the pending mark")
	require.Empty(t, got.Metadata.Get(core.MetadataLastError))
	require.Equal(t, "abc", got.Metadata.Get("trace"), "other metadata must pass through")
	got.Ack()
}
