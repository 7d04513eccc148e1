package nats

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/deadletter/deadletter/core"
)

// maxCopyAttempts bounds how often move writes the copy of an entry when
// other processes keep writing the same replayed subject first.
const maxCopyAttempts = 5

// MoveToReplayed copies the entry, stamped with replayedAt, to the replayed
// stream, then deletes it from the DLQ. The copy's subject ends with the
// entry's id, and running it again after an interruption between the two
// steps deletes the entry without copying it twice. Between the steps the
// entry is in both streams; it is never in neither.
//
// A copy of another entry with the same id, left from before the DLQ
// stream was deleted and created again, does not count as a copy of this
// one.
func (q *DLQ) MoveToReplayed(ctx context.Context, id string, replayedAt time.Time) error {
	seq, ok := parseID(id)
	if !ok {
		return fmt.Errorf("move dlq entry %q to replayed: %w", id, core.ErrEntryNotFound)
	}

	raw, err := q.stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return q.checkMoved(ctx, id, seq)
	}
	if err != nil {
		return fmt.Errorf("move dlq entry %s to replayed: read entry: %w", id, err)
	}

	return q.move(ctx, id, seq, raw, replayedAt, false)
}

// move copies raw, stamped with replayedAt, to the replayed stream unless an
// earlier run did, then deletes it from the DLQ. With countReplay the copy's
// replay_count includes this replay.
func (q *DLQ) move(ctx context.Context, id string, seq uint64, raw *jetstream.RawStreamMsg,
	replayedAt time.Time, countReplay bool) error {
	msg := nats.NewMsg(q.names.replayedSubject + formatID(seq))
	for key, values := range raw.Header {
		if !strings.HasPrefix(key, natsHeaderPrefix) && len(values) > 0 {
			msg.Header.Set(key, values[0])
		}
	}
	msg.Header.Set(core.FieldReplayedAt, core.FormatTime(replayedAt))
	if countReplay {
		replays, _ := strconv.Atoi(msg.Header.Get(core.FieldReplayCount))
		msg.Header.Set(core.FieldReplayCount, strconv.Itoa(replays+1))
	}
	msg.Data = raw.Data
	digest := entryDigest(raw)

	for range maxCopyAttempts {
		last, err := q.lastCopy(ctx, seq)
		if err != nil {
			return fmt.Errorf("move dlq entry %s to replayed: %w", id, err)
		}
		if last != nil && entryDigest(last) == digest {
			return q.finishMove(ctx, id, seq)
		}

		// The copy goes in only if the subject's last message is still
		// the one just read. That message is either absent or the copy of
		// an entry of an earlier DLQ stream with the same id, which the
		// replayed stream keeps.
		var lastSeq uint64
		if last != nil {
			lastSeq = last.Sequence
		}
		_, err = q.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(lastSeq))
		if err == nil {
			return q.finishMove(ctx, id, seq)
		}
		if !isWrongLastSequence(err) {
			return fmt.Errorf("move dlq entry %s to replayed: write to stream %s: %w", id, q.names.replayedStream, err)
		}
		// Another process wrote the subject after the read, most likely
		// moving this same entry, so read it again.
	}
	return fmt.Errorf("move dlq entry %s to replayed: subject %s%d of stream %s changed on each of %d writes",
		id, q.names.replayedSubject, seq, q.names.replayedStream, maxCopyAttempts)
}

// finishMove deletes an entry that is already in the replayed stream.
func (q *DLQ) finishMove(ctx context.Context, id string, seq uint64) error {
	deleted, err := q.deleteEntry(ctx, seq)
	if err != nil {
		return fmt.Errorf("move dlq entry %s to replayed: %w", id, err)
	}
	if !deleted {
		return nil
	}
	if err := q.countDeleted(ctx, 1); err != nil {
		return fmt.Errorf("move dlq entry %s to replayed: %w", id, err)
	}
	return nil
}

// checkMoved returns nil when an entry missing from the DLQ is already in
// the replayed stream, and an error wrapping core.ErrEntryNotFound when it
// is in neither.
//
// With the entry gone, only time distinguishes its copy from the copy of
// an entry of an earlier DLQ stream with the same id: a copy written
// before the current DLQ stream was created belongs to an earlier one.
// Both times come from the servers' clocks, so in a cluster with skewed
// clocks a move made within that skew of the stream's creation can be
// misjudged.
func (q *DLQ) checkMoved(ctx context.Context, id string, seq uint64) error {
	last, err := q.lastCopy(ctx, seq)
	if err != nil {
		return fmt.Errorf("move dlq entry %s to replayed: %w", id, err)
	}
	if last == nil {
		return fmt.Errorf("move dlq entry %s to replayed: %w", id, core.ErrEntryNotFound)
	}

	info, err := q.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("move dlq entry %s to replayed: read stream %s: %w", id, q.names.dlqStream, err)
	}
	if seq > info.State.LastSeq || last.Time.Before(info.Created) {
		return fmt.Errorf("move dlq entry %s to replayed: %w; the replayed stream contains only an entry "+
			"of an earlier stream %s with the same id", id, core.ErrEntryNotFound, q.names.dlqStream)
	}
	return nil
}

// lastCopy returns the newest message on the replayed subject of the DLQ
// id seq, or nil when there is none.
func (q *DLQ) lastCopy(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, error) {
	subject := q.names.replayedSubject + formatID(seq)
	last, err := q.replayed.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look for an earlier copy on %s: %w", subject, err)
	}
	return last, nil
}

// entryDigest returns the SHA-256 hash, in hex, of a DLQ entry's data and
// headers, leaving out the NATS headers and the replayed_at and
// replay_count headers that a move sets. An entry and its copy in the
// replayed stream have the same digest. Two entries that share an id,
// because the DLQ stream was deleted and created again in between, have
// different ones unless their data and every other header are equal.
func entryDigest(msg *jetstream.RawStreamMsg) string {
	keys := make([]string, 0, len(msg.Header))
	for key, values := range msg.Header {
		skip := strings.HasPrefix(key, natsHeaderPrefix) || key == core.FieldReplayedAt ||
			key == core.FieldReplayCount || len(values) == 0
		if !skip {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)

	// Each part goes in with its length, so that no two different entries
	// hash the same bytes.
	hash := sha256.New()
	for _, key := range keys {
		value := msg.Header[key][0]
		fmt.Fprintf(hash, "%d:%s%d:%s", len(key), key, len(value), value)
	}
	fmt.Fprintf(hash, "%d:", len(msg.Data))
	hash.Write(msg.Data)
	return hex.EncodeToString(hash.Sum(nil))
}
