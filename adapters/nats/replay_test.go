package nats

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/core"
)

func TestReplay(t *testing.T) {
	ctx := context.Background()

	t.Run("DeliversToFailedHandlerOnly", func(t *testing.T) {
		a := newTestAdapter(t)
		mail := subscribe(t, a, "send_welcome_email", "patient.registered")
		billing := subscribe(t, a, "create_billing_account", "patient.registered")
		entry := newTestEntry(t, "send_welcome_email")
		id, err := a.dlq.Add(ctx, entry)
		require.NoError(t, err)

		require.NoError(t, a.dlq.Replay(ctx, id, time.Now()))
		got := receive(t, mail)
		require.Equal(t, entry.EventID, got.UUID)
		require.Equal(t, string(entry.EventData), string(got.Payload))
		require.Equal(t, "2", got.Metadata.Get(core.MetadataReplayCount))
		require.Equal(t, "1", got.Metadata.Get(core.MetadataDeliveryCount))
		require.Empty(t, got.Metadata.Get(replayHandlerHeader))
		got.Ack()

		select {
		case other := <-billing:
			t.Fatalf("replay of handler send_welcome_email reached create_billing_account: %s", other.UUID)
		case <-time.After(200 * time.Millisecond):
		}
		n, err := a.dlq.Len(ctx)
		require.NoError(t, err)
		require.Zero(t, n)
	})

	t.Run("RunAgainDeliversOnce", func(t *testing.T) {
		a := newTestAdapter(t)
		subscribe(t, a, "send_welcome_email", "patient.registered")
		id, err := a.dlq.Add(ctx, newTestEntry(t, "send_welcome_email"))
		require.NoError(t, err)

		// An earlier run published the event and stopped before moving
		// the entry.
		raw, err := a.dlq.stream.GetMsg(ctx, 1)
		require.NoError(t, err)
		entry, err := parseEntryMsg(1, raw)
		require.NoError(t, err)
		require.NoError(t, a.dlq.publishReplay(ctx, entry, entryDigest(raw)))

		require.NoError(t, a.dlq.Replay(ctx, id, time.Now()))
		require.NoError(t, a.dlq.Replay(ctx, id, time.Now()), "replaying a replayed entry must succeed")
		info, err := a.events.Info(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, info.State.Msgs, "the event must be published once")

		replayed, err := a.dlq.List(ctx, core.ListOptions{Replayed: true})
		require.NoError(t, err)
		require.Len(t, replayed, 1)
	})

	t.Run("DeliversEntryWithReusedID", func(t *testing.T) {
		a := newTestAdapter(t)
		mail := subscribe(t, a, "send_welcome_email", "patient.registered")
		first := newTestEntry(t, "send_welcome_email")
		firstID, err := a.dlq.Add(ctx, first)
		require.NoError(t, err)
		require.NoError(t, a.dlq.Replay(ctx, firstID, time.Now()))
		receive(t, mail).Ack()

		// An operator clears the DLQ by deleting its stream. The next
		// entry creates it again, and its ids start again at 1.
		require.NoError(t, a.js.DeleteStream(ctx, a.names.dlqStream))
		// The same failed_at shows that the replay's message id
		// distinguishes the entries by more than their time.
		second := newTestEntry(t, "send_welcome_email")
		second.FailedAt = first.FailedAt
		secondID, err := a.dlq.Add(ctx, second)
		require.NoError(t, err)
		require.Equal(t, firstID, secondID, "the recreated DLQ stream must reuse the id")

		require.NoError(t, a.dlq.Replay(ctx, secondID, time.Now()))
		got := receive(t, mail)
		require.Equal(t, second.EventID, got.UUID, "the entry with the reused id must be delivered")
		got.Ack()
		n, err := a.dlq.Len(ctx)
		require.NoError(t, err)
		require.Zero(t, n)

		replayed, err := a.dlq.List(ctx, core.ListOptions{Replayed: true})
		require.NoError(t, err)
		require.Len(t, replayed, 2, "the copy of the earlier entry must stay")
		require.Equal(t, second.EventID, replayed[0].EventID)
		require.Equal(t, first.EventID, replayed[1].EventID)

		require.NoError(t, a.dlq.Replay(ctx, secondID, time.Now()), "replaying a replayed entry must succeed")
		select {
		case again := <-mail:
			t.Fatalf("a second replay delivered %s again", again.UUID)
		case <-time.After(200 * time.Millisecond):
		}
	})

	t.Run("RejectsUnknownEntry", func(t *testing.T) {
		a := newTestAdapter(t)
		require.ErrorIs(t, a.dlq.Replay(ctx, "7", time.Now()), core.ErrEntryNotFound)
		require.ErrorIs(t, a.dlq.Replay(ctx, "x", time.Now()), core.ErrEntryNotFound)
	})

	t.Run("RejectsUndecodableEntry", func(t *testing.T) {
		a := newTestAdapter(t)
		id, err := a.dlq.Add(ctx, core.Entry{EventData: []byte("junk"), Handler: "h", Error: "decode", FailedAt: time.Now()})
		require.NoError(t, err)
		require.ErrorContains(t, a.dlq.Replay(ctx, id, time.Now()), "no valid event type")
	})
}
