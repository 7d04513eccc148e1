package nats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/deadletter/deadletter/core"
)

// replayHandlerHeader names the one handler that a replayed event is for.
// Subscribers of other handlers acknowledge such a message without handing
// it out.
const replayHandlerHeader = "Deadletter-Replay-Handler"

// replayDedupWindow is how long the events stream remembers the message id
// of a replay, so that a replay run again within it publishes nothing.
// Only replays carry a message id, so the window costs little memory.
const replayDedupWindow = 24 * time.Hour

var _ core.Replayer = (*DLQ)(nil)

// Replay publishes the entry's event again on its event type's subject,
// marked for the handler that failed, then moves the entry to the replayed
// stream. The event starts with a fresh delivery count and one more replay
// in core.MetadataReplayCount.
//
// A replay run again after an interruption delivers the event once: an
// entry already copied to the replayed stream is only deleted, and the
// publish carries a message id that the events stream drops as a duplicate
// for 24 hours. Both checks match the entry by its content, not only its
// id, because the ids start again at 1 when the DLQ stream is deleted and
// created again.
func (q *DLQ) Replay(ctx context.Context, id string, replayedAt time.Time) error {
	seq, ok := parseID(id)
	if !ok {
		return fmt.Errorf("replay dlq entry %q: %w", id, core.ErrEntryNotFound)
	}

	raw, err := q.stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return q.checkMoved(ctx, id, seq)
	}
	if err != nil {
		return fmt.Errorf("replay dlq entry %s: read entry: %w", id, err)
	}

	digest := entryDigest(raw)
	last, err := q.lastCopy(ctx, seq)
	if err != nil {
		return fmt.Errorf("replay dlq entry %s: %w", id, err)
	}
	if last != nil && entryDigest(last) == digest {
		// An earlier run published the event and copied the entry.
		return q.finishMove(ctx, id, seq)
	}

	entry, err := parseEntryMsg(seq, raw)
	if err != nil {
		return fmt.Errorf("replay dlq entry %s: %w", id, err)
	}
	if err := q.publishReplay(ctx, entry, digest); err != nil {
		return err
	}
	return q.move(ctx, id, seq, raw, replayedAt, true)
}

// publishReplay publishes the entry's event for its handler alone. digest
// is the entry's entryDigest.
func (q *DLQ) publishReplay(ctx context.Context, entry core.Entry, digest string) error {
	if entry.Handler == "" || !core.ValidEventType(entry.EventType) {
		return fmt.Errorf("replay dlq entry %s: it has no handler or no valid event type, "+
			"as when the message could not be decoded; delete it instead", entry.ID)
	}

	// Only the handler's own consumer takes a replayed event; without one
	// the event would be published for nobody.
	if _, err := q.events.Consumer(ctx, consumerName(entry.Handler, entry.EventType)); err != nil {
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("replay dlq entry %s: %w: handler %q on %q; start the handler, then replay",
				entry.ID, core.ErrUnknownHandler, entry.Handler, entry.EventType)
		}
		return fmt.Errorf("replay dlq entry %s: look up the consumer of handler %q: %w", entry.ID, entry.Handler, err)
	}

	msg := nats.NewMsg(q.names.eventSubject(entry.EventType))
	msg.Data = entry.EventData
	uuid := entry.EventID
	if uuid == "" {
		uuid = "replay-" + entry.ID
	}
	msg.Header.Set(uuidHeader, escapeHeaderValue(uuid))
	msg.Header.Set(replayHandlerHeader, entry.Handler)
	msg.Header.Set(core.MetadataReplayCount, strconv.Itoa(entry.ReplayCount+1))

	// The id holds the entry's digest, so that an entry of a recreated
	// DLQ stream with a reused sequence is not taken for a duplicate.
	msgID := fmt.Sprintf("deadletter-replay-%s-%s", entry.ID, digest)
	if _, err := q.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID)); err != nil {
		return fmt.Errorf("replay dlq entry %s to handler %q: publish event: %w", entry.ID, entry.Handler, err)
	}
	return nil
}
