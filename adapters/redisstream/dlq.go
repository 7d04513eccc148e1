package redisstream

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deadletter/deadletter/core"
)

// DLQ is the dead letter queue on Redis Streams: entries on "<prefix>:dlq"
// as flat fields, replayed entries on "<prefix>:dlq:replayed", the DLQ ids
// of replayed entries in "<prefix>:dlq:replayed-ids", and the count of
// entries dropped at the size cap in "<prefix>:dlq:dropped".
type DLQ struct {
	client         redis.UniversalClient
	prefix         string
	stream         string
	replayed       string
	movedIDs       string
	dropped        string
	maxLen         int64
	replayedMaxLen int64

	// knownGroups holds "<stream>\x00<handler>" of consumer groups seen to
	// exist, so that replays check each only once.
	knownGroups sync.Map
}

var _ core.DLQ = (*DLQ)(nil)

// addScript appends an entry, trims the stream to about a cap and counts
// what the trim removed, so that no entry is dropped uncounted.
// KEYS: stream, dropped counter. ARGV: cap (-1 for none), fields.
var addScript = redis.NewScript(`
local before = redis.call('XLEN', KEYS[1])
local id
if ARGV[1] == '-1' then
  id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
else
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 2))
end
local dropped = before + 1 - redis.call('XLEN', KEYS[1])
if dropped > 0 then
  redis.call('INCRBY', KEYS[2], dropped)
end
return id
`)

// moveLua moves one entry to the replayed stream with its replay time, and
// records its DLQ id in a sorted set so that moving it again reports
// success: a replay run again after an interruption must not fail on
// entries it already moved. It returns 2 when the entry had been moved
// before and 0 when it is unknown, and goes on when it moved the entry.
// With ARGV[6] set to 1 the copy's replay_count includes this replay.
// KEYS: dlq, replayed, moved ids. ARGV: id, replayed_at, replayed cap (-1
// for none).
const moveLua = `
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then
  if redis.call('ZSCORE', KEYS[3], ARGV[1]) then
    return 2
  end
  return 0
end
local fields = found[1][2]
local copy = {}
for i = 1, #fields, 2 do
  if fields[i] == 'replay_count' and ARGV[6] == '1' then
    table.insert(copy, fields[i])
    table.insert(copy, tostring((tonumber(fields[i + 1]) or 0) + 1))
  elseif fields[i] ~= 'replayed_at' then
    table.insert(copy, fields[i])
    table.insert(copy, fields[i + 1])
  end
end
table.insert(copy, 'replayed_at')
table.insert(copy, ARGV[2])
if ARGV[3] == '-1' then
  redis.call('XADD', KEYS[2], '*', unpack(copy))
else
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(copy))
end
redis.call('XDEL', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[3], tonumber(string.match(ARGV[1], '^(%d+)')), ARGV[1])
if ARGV[3] ~= '-1' then
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[3]) - 1)
end
`

// moveScript runs moveLua and returns 1 when it moved the entry.
var moveScript = redis.NewScript(moveLua + "return 1\n")

// isStreamID reports whether id is a Redis stream entry id: two decimal
// numbers joined by a dash, each fitting in 64 bits as Redis requires.
func isStreamID(id string) bool {
	ms, seq, ok := strings.Cut(id, "-")
	if !ok {
		return false
	}
	_, msErr := strconv.ParseUint(ms, 10, 64)
	_, seqErr := strconv.ParseUint(seq, 10, 64)
	return msErr == nil && seqErr == nil
}

// Stream returns the name of the stream that holds the entries.
func (d *DLQ) Stream() string { return d.stream }

// Add appends e to the DLQ and returns its id.
func (d *DLQ) Add(ctx context.Context, e core.Entry) (string, error) {
	fields := e.Fields()
	args := make([]any, 0, len(fields)+1)
	args = append(args, d.maxLen)
	for _, field := range fields {
		args = append(args, field)
	}

	id, err := addScript.Run(ctx, d.client, []string{d.stream, d.dropped}, args...).Text()
	if err != nil {
		return "", fmt.Errorf("write dlq entry for handler %q to %s: %w", e.Handler, d.stream, err)
	}
	return id, nil
}

// Len returns the number of entries in the DLQ.
func (d *DLQ) Len(ctx context.Context) (int64, error) {
	n, err := d.client.XLen(ctx, d.stream).Result()
	if err != nil {
		return 0, fmt.Errorf("count entries of %s: %w", d.stream, err)
	}
	return n, nil
}

// List returns entries newest first.
func (d *DLQ) List(ctx context.Context, opts core.ListOptions) ([]core.Entry, error) {
	stream := d.stream
	if opts.Replayed {
		stream = d.replayed
	}
	limit := opts.Limit
	if limit < 0 {
		return nil, fmt.Errorf("%w: list %s: Limit is %d; it must not be negative", core.ErrInvalidConfig, stream, limit)
	}
	if limit == 0 {
		limit = core.DefaultListLimit
	}
	start := "+"
	if opts.Before != "" {
		if !isStreamID(opts.Before) {
			return nil, fmt.Errorf("%w: list %s: Before %q is not a stream id", core.ErrInvalidConfig, stream, opts.Before)
		}
		start = "(" + opts.Before
	}

	found, err := d.client.XRevRangeN(ctx, stream, start, "-", int64(limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("list entries of %s: %w", stream, err)
	}
	entries := make([]core.Entry, 0, len(found))
	for _, msg := range found {
		entries = append(entries, parseEntry(msg))
	}
	return entries, nil
}

// Get returns the entry with the given id.
func (d *DLQ) Get(ctx context.Context, id string) (core.Entry, error) {
	if !isStreamID(id) {
		return core.Entry{}, fmt.Errorf("%w: %q is not a stream id", core.ErrEntryNotFound, id)
	}
	found, err := d.client.XRange(ctx, d.stream, id, id).Result()
	if err != nil {
		return core.Entry{}, fmt.Errorf("read entry %s of %s: %w", id, d.stream, err)
	}
	if len(found) == 0 {
		return core.Entry{}, fmt.Errorf("%w: %s in %s", core.ErrEntryNotFound, id, d.stream)
	}
	return parseEntry(found[0]), nil
}

// Delete removes entries by id and returns how many it removed. Ids that are
// not stream ids are reported as an error before anything is removed.
func (d *DLQ) Delete(ctx context.Context, ids ...string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	for _, id := range ids {
		if !isStreamID(id) {
			return 0, fmt.Errorf("%w: %q is not a stream id", core.ErrEntryNotFound, id)
		}
	}
	n, err := d.client.XDel(ctx, d.stream, ids...).Result()
	if err != nil {
		return 0, fmt.Errorf("delete %d entries of %s: %w", len(ids), d.stream, err)
	}
	return int(n), nil
}

// MoveToReplayed moves the entry to the replayed stream in one atomic step.
func (d *DLQ) MoveToReplayed(ctx context.Context, id string, replayedAt time.Time) error {
	if !isStreamID(id) {
		return fmt.Errorf("%w: %q is not a stream id", core.ErrEntryNotFound, id)
	}
	moved, err := moveScript.Run(ctx, d.client, []string{d.stream, d.replayed, d.movedIDs},
		id, core.FormatTime(replayedAt), d.replayedMaxLen).Int()
	if err != nil {
		return fmt.Errorf("move entry %s from %s to %s: %w", id, d.stream, d.replayed, err)
	}
	if moved == 0 {
		return fmt.Errorf("%w: %s in %s", core.ErrEntryNotFound, id, d.stream)
	}
	return nil
}

// Dropped returns how many entries the size cap has removed.
func (d *DLQ) Dropped(ctx context.Context) (int64, error) {
	n, err := d.client.Get(ctx, d.dropped).Int64()
	if err != nil && err != redis.Nil {
		return 0, fmt.Errorf("read dropped count %s: %w", d.dropped, err)
	}
	return n, nil
}

// parseEntry rebuilds an entry as far as its fields allow; an entry written
// by another tool with fields missing is still listed, shown and deletable.
func parseEntry(msg redis.XMessage) core.Entry {
	fields := make(map[string]string, len(msg.Values))
	for key, value := range msg.Values {
		switch v := value.(type) {
		case string:
			fields[key] = v
		default:
			fields[key] = fmt.Sprint(v)
		}
	}
	entry, _ := core.ParseEntry(msg.ID, fields)
	return entry
}
