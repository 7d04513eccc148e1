package redisstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deadletter/deadletter/core"
)

var _ core.Replayer = (*DLQ)(nil)

// replayPrefix starts the retry schedule member of a replayed event. It is
// not a stream id, so the subscription can tell that there is no pending
// entry to acknowledge for it.
const replayPrefix = "replay-"

// replayScript moves an entry to the replayed stream, as moveLua does, and
// puts a copy of its event in the failed handler's retry schedule, due at
// once with a fresh delivery count, in one atomic step. It returns 1 when it replayed the
// entry, 2 when the entry had been replayed before and 0 when it is unknown.
// KEYS: dlq, replayed, moved ids, retries, state. ARGV: id, replayed_at,
// replayed cap (-1 for none), schedule member, message copy, 1 (count the
// replay in the replayed copy).
var replayScript = redis.NewScript(moveLua + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[5], 'd:' .. ARGV[4], ARGV[5], 'n:' .. ARGV[4], 0)
redis.call('ZADD', KEYS[4], now, ARGV[4])
return 1
`)

// Replay delivers the entry's event again to the handler that failed, and
// to no other, by putting it in that handler's retry schedule on the
// event's stream; the handler takes it when it next runs. The entry moves
// to the replayed stream in the same atomic step, so replaying it twice
// delivers it once.
func (d *DLQ) Replay(ctx context.Context, id string, replayedAt time.Time) error {
	entry, err := d.Get(ctx, id)
	if errors.Is(err, core.ErrEntryNotFound) && isStreamID(id) {
		replayed, scoreErr := d.client.ZScore(ctx, d.movedIDs, id).Result()
		if scoreErr == nil && replayed >= 0 {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	if entry.Handler == "" {
		return fmt.Errorf("replay entry %s: it names no handler", id)
	}

	stream := entry.SourceStream
	if stream == "" {
		stream = d.prefix + ":" + entry.EventType
	}
	if err := d.checkGroup(ctx, stream, entry.Handler); err != nil {
		return fmt.Errorf("replay entry %s: %w", id, err)
	}
	retries, state := retryKeys(stream, entry.Handler)

	copyJSON, err := json.Marshal(replayCopy(entry, stream))
	if err != nil {
		return fmt.Errorf("replay entry %s: encode event: %w", id, err)
	}
	result, err := replayScript.Run(ctx, d.client, []string{d.stream, d.replayed, d.movedIDs, retries, state},
		id, core.FormatTime(replayedAt), d.replayedMaxLen, replayPrefix+id, copyJSON, 1).Int()
	if err != nil {
		return fmt.Errorf("replay entry %s to handler %q: %w", id, entry.Handler, err)
	}
	if result == 0 {
		return fmt.Errorf("replay: %w: %s in %s", core.ErrEntryNotFound, id, d.stream)
	}
	return nil
}

// replayCopy returns the message that a replay puts in the schedule: the
// event as it was received, with one more replay counted.
func replayCopy(entry core.Entry, stream string) parkedMessage {
	uuid := entry.EventID
	if uuid == "" {
		uuid = replayPrefix + entry.ID
	}
	metadata := map[string]string{
		core.MetadataReplayCount:  strconv.Itoa(entry.ReplayCount + 1),
		core.MetadataSourceStream: stream,
	}
	if entry.SourceID != "" {
		metadata[core.MetadataSourceID] = entry.SourceID
	}
	return parkedMessage{UUID: uuid, Payload: entry.EventData, Metadata: metadata}
}

// checkGroup returns an error wrapping core.ErrUnknownHandler unless the
// handler has a consumer group on the stream: a replayed event is taken only
// by that group's subscribers. Groups found are remembered, because they are
// never removed in normal operation.
func (d *DLQ) checkGroup(ctx context.Context, stream, handler string) error {
	key := stream + "\x00" + handler
	if _, ok := d.knownGroups.Load(key); ok {
		return nil
	}
	groups, err := d.client.XInfoGroups(ctx, stream).Result()
	if err != nil && !strings.Contains(err.Error(), "no such key") {
		return fmt.Errorf("list consumer groups of %s: %w", stream, err)
	}
	for _, group := range groups {
		if group.Name == handler {
			d.knownGroups.Store(key, struct{}{})
			return nil
		}
	}
	return fmt.Errorf("%w: no consumer group %q on %s; start the handler, then replay", core.ErrUnknownHandler,
		handler, stream)
}
