package nats

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/core"
)

// dropTestCap is the MaxEventsPerType of the tests that drop a waiting
// retry: small, so that a few publishes push the failed event out.
const dropTestCap = 10

func TestDroppedRetry(t *testing.T) {
	t.Run("DeadLettersOnceAcrossProcesses", func(t *testing.T) {
		const eventType = "patient.registered"
		a := newTestAdapter(t, func(c *Config) {
			c.MaxEventsPerType = dropTestCap
			c.AckWait = 200 * time.Millisecond
		})
		b := reopen(t, a)
		first := newTestEvent(t, eventType)
		firstMsg := newEventMessage(t, first)

		// Both processes run the handler, so both sweep. The first event
		// fails once with a pause that outlasts the test; every other event
		// is handled.
		var firstDeliveries atomic.Int32
		nacked := make(chan struct{})
		var nackOnce sync.Once
		handle := func(ch <-chan *message.Message) {
			for msg := range ch {
				if msg.UUID != firstMsg.UUID {
					msg.Ack()
					continue
				}
				firstDeliveries.Add(1)
				msg.Metadata.Set(core.MetadataRetryAfter, time.Minute.String())
				msg.Metadata.Set(core.MetadataLastError, "search index timed out")
				msg.Metadata.Set(core.MetadataErrorType, string(core.ErrorTypeFailure))
				msg.Metadata.Set(core.MetadataFirstFailedAt, "2024-05-01T10:00:00.000000Z")
				msg.Nack()
				nackOnce.Do(func() { close(nacked) })
			}
		}
		go handle(subscribe(t, a, "index_patient", eventType))
		go handle(subscribe(t, b, "index_patient", eventType))

		require.NoError(t, a.Publisher().Publish(eventType, firstMsg))
		select {
		case <-nacked:
		case <-time.After(waitTimeout):
			t.Fatal("the first event was not delivered")
		}
		subject := a.retryState.subject("index_patient", eventType, 1)
		require.Eventually(t, func() bool {
			_, found, err := a.retryState.load(context.Background(), subject)
			return err == nil && found
		}, waitTimeout, 10*time.Millisecond, "the nack must store the retry state")

		var more []*message.Message
		for range 3 * dropTestCap {
			more = append(more, newEventMessage(t, newTestEvent(t, eventType)))
		}
		require.NoError(t, a.Publisher().Publish(eventType, more...))
		_, err := a.events.GetMsg(context.Background(), 1)
		require.ErrorIs(t, err, jetstream.ErrMsgNotFound, "the cap must have dropped the waiting event")

		var entries []core.Entry
		require.Eventually(t, func() bool {
			entries, err = a.DLQ().List(context.Background(), core.ListOptions{})
			return err == nil && len(entries) > 0
		}, waitTimeout, 10*time.Millisecond, "the dropped event must be dead-lettered")
		require.Eventually(t, func() bool {
			_, found, err := a.retryState.load(context.Background(), subject)
			return err == nil && !found
		}, waitTimeout, 10*time.Millisecond, "the sweep must purge the retry state")

		// A sweep that listed the state before the other process purged it
		// writes the same message id, which the DLQ stream drops. Give both
		// processes two more sweeps before counting.
		time.Sleep(2 * a.cfg.AckWait)
		entries, err = a.DLQ().List(context.Background(), core.ListOptions{})
		require.NoError(t, err)
		require.Len(t, entries, 1, "two sweeping processes must write one entry")

		entry := entries[0]
		raw, err := first.Marshal()
		require.NoError(t, err)
		require.JSONEq(t, string(raw), string(entry.EventData))
		require.Equal(t, "index_patient", entry.Handler)
		require.Contains(t, entry.Error, "search index timed out")
		require.Contains(t, entry.Error, "MaxEventsPerType")
		require.Equal(t, core.ErrorTypeTrimmed, entry.ErrorType)
		require.Equal(t, 1, entry.Attempts)
		require.Equal(t, first.EventID, entry.EventID)
		require.Equal(t, first.EventType, entry.EventType)
		require.Equal(t, first.AggregateID, entry.AggregateID)
		require.Equal(t, a.names.eventsStream, entry.SourceStream)
		require.Equal(t, "1", entry.SourceID)
		require.Equal(t, "2024-05-01T10:00:00.000000Z", core.FormatTime(entry.FirstFailedAt))
		require.EqualValues(t, 1, firstDeliveries.Load(), "the dropped event must not be delivered again")
	})
	t.Run("WritesOneEntryForTwoSweeps", func(t *testing.T) {
		const eventType = "patient.registered"
		ctx := context.Background()
		a := newTestAdapter(t, func(c *Config) { c.MaxEventsPerType = dropTestCap })
		s, err := a.Subscriber("index_patient")
		require.NoError(t, err)
		// An unstarted subscription does not sweep on its own.
		sub, err := s.(*Subscriber).newSubscription(ctx, eventType)
		require.NoError(t, err)
		t.Cleanup(sub.cancel)

		dropped, present := newTestEvent(t, eventType), newTestEvent(t, eventType)
		state := message.Metadata{
			core.MetadataLastError:     "search index timed out",
			core.MetadataDeliveryCount: "2",
		}
		// The dropped event is at sequence 1, the present one at dropTestCap+1,
		// and the cap leaves sequences 2 to dropTestCap+1 in the stream.
		events := []*message.Message{newEventMessage(t, dropped)}
		for range dropTestCap - 1 {
			events = append(events, newEventMessage(t, newTestEvent(t, eventType)))
		}
		events = append(events, newEventMessage(t, present))
		require.NoError(t, a.Publisher().Publish(eventType, events...))
		for _, seq := range []uint64{1, dropTestCap + 1} {
			subject := a.retryState.subject("index_patient", eventType, seq)
			_, err := a.retryState.save(ctx, subject, state, events[seq-1].Payload)
			require.NoError(t, err)
		}

		written, err := sub.sweepDropped(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, written, "only the event dropped from the stream is dead-lettered")

		// Another process that loaded the state before the purge writes the
		// entry again; the DLQ stream drops the second write.
		_, err = a.retryState.save(ctx, a.retryState.subject("index_patient", eventType, 1), state,
			newEventMessage(t, dropped).Payload)
		require.NoError(t, err)
		written, err = sub.sweepDropped(ctx)
		require.NoError(t, err)
		require.Zero(t, written, "a second write of the same dropped event must be a duplicate")

		entries, err := a.DLQ().List(ctx, core.ListOptions{})
		require.NoError(t, err)
		require.Len(t, entries, 1)
		require.Equal(t, dropped.EventID, entries[0].EventID)
		require.Equal(t, 2, entries[0].Attempts)

		_, found, err := a.retryState.load(ctx, a.retryState.subject("index_patient", eventType, 1))
		require.NoError(t, err)
		require.False(t, found, "the dropped event's retry state must be purged")
		_, found, err = a.retryState.load(ctx, a.retryState.subject("index_patient", eventType, dropTestCap+1))
		require.NoError(t, err)
		require.True(t, found, "the retry state of an event still in the stream must stay")
	})
}

// redeliveredMsg is the second delivery of the event at a stream sequence,
// settled without a server round trip.
type redeliveredMsg struct {
	jetstream.Msg
	data     []byte
	stream   string
	sequence uint64
}

func (m redeliveredMsg) Headers() nats.Header { return nats.Header{} }
func (m redeliveredMsg) Data() []byte         { return m.data }
func (m redeliveredMsg) Ack() error           { return nil }

func (m redeliveredMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{
		Stream: m.stream, NumDelivered: 2, Sequence: jetstream.SequencePair{Stream: m.sequence, Consumer: 2},
	}, nil
}

func TestRetryStateAfterFailedLoad(t *testing.T) {
	const eventType = "patient.registered"
	ctx := context.Background()
	a := newTestAdapter(t, func(c *Config) { c.MaxEventsPerType = dropTestCap })
	s, err := a.Subscriber("index_patient")
	require.NoError(t, err)
	// An unstarted subscription does not sweep on its own.
	sub, err := s.(*Subscriber).newSubscription(ctx, eventType)
	require.NoError(t, err)
	t.Cleanup(sub.cancel)

	handled := newEventMessage(t, newTestEvent(t, eventType))
	require.NoError(t, a.Publisher().Publish(eventType, handled))
	state := message.Metadata{
		core.MetadataLastError:     "search index timed out",
		core.MetadataDeliveryCount: "1",
	}
	subject := a.retryState.subject("index_patient", eventType, 1)

	// The retry state stream is missing while the second delivery loads
	// the state, so the load fails. The stream is back, with the state of
	// the first attempt, when the handler acknowledges the event.
	require.NoError(t, a.js.DeleteStream(ctx, a.names.retryStream))
	msg := redeliveredMsg{data: handled.Payload, stream: a.names.eventsStream, sequence: 1}
	_, d := sub.toWatermill(msg)
	reopen(t, a)
	_, err = a.retryState.save(ctx, subject, state, handled.Payload)
	require.NoError(t, err)

	sub.ack(d)
	_, found, err := a.retryState.load(ctx, subject)
	require.NoError(t, err)
	require.False(t, found, "an acknowledged event must not keep a retry state that failed to load")

	var more []*message.Message
	for range dropTestCap {
		more = append(more, newEventMessage(t, newTestEvent(t, eventType)))
	}
	require.NoError(t, a.Publisher().Publish(eventType, more...))
	written, err := sub.sweepDropped(ctx)
	require.NoError(t, err)
	require.Zero(t, written, "a handled event dropped from the stream must not be dead-lettered")
}
