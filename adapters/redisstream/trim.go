package redisstream

import (
	"context"
	"errors"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/deadletter/deadletter/core"
)

// trimCheckScript counts the events that the stream's trim removed before
// the handler's group read them, and returns how many of them no check has
// reported yet, the count so far and the group's last delivered id. It
// returns nil while Redis keeps no valid read counter for the group.
//
// The count rests on the group's entries-read counter (Redis 7). XREADGROUP
// adds one to it per entry delivered, and when it reads past entries the
// trim removed, it delivers the next entry left and adds one, not the size
// of the gap (seen on Redis 7.0.15). So entries-added - entries-read is the
// number of entries the group never received, and of those, the ones still
// in the stream after its last delivered id are not lost yet. An XDEL ahead
// of the group or XGROUP SETID makes the counter invalid, but the adapter
// does neither on event streams. A group created at "0" has no valid counter
// until its first read.
//
// Counting the unread entries takes an XRANGE over them, so the script skips
// it when the stream still holds an entry at or before the group's position
// at the last check. No entry after that position can have been trimmed
// since, so the count is unchanged. The hash stores the count, that position
// and entries-added, whose drop shows that the stream was deleted and
// created again. Every process of the handler runs the same atomic script,
// so each lost event is reported by one process once.
//
// KEYS: stream, trimmed-unread hash. ARGV: group.
var trimCheckScript = redis.NewScript(`
local function field(reply, name)
  for i = 1, #reply, 2 do
    if reply[i] == name then
      return reply[i + 1]
    end
  end
  return false
end

if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
local added = field(redis.call('XINFO', 'STREAM', KEYS[1]), 'entries-added')
local group = false
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  if field(g, 'name') == ARGV[1] then
    group = g
  end
end
if not added or not group or not field(group, 'entries-read') then
  return false
end
local read = field(group, 'entries-read')
local position = field(group, 'last-delivered-id')

local state = redis.call('HMGET', KEYS[2], 'count', 'last_delivered_id', 'entries_added')
local reported = tonumber(state[1]) or 0
local seen = state[2]
if (tonumber(state[3]) or 0) > added then
  reported, seen = 0, false
end

local lost = reported
if not seen or #redis.call('XRANGE', KEYS[1], '-', seen, 'COUNT', 1) == 0 then
  local unread = 0
  if #redis.call('XRANGE', KEYS[1], '-', position, 'COUNT', 1) == 0 then
    unread = redis.call('XLEN', KEYS[1])
  else
    local from = '(' .. position
    repeat
      local batch = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 1000)
      unread = unread + #batch
      if #batch > 0 then
        from = '(' .. batch[#batch][1]
      end
    until #batch < 1000
  end
  lost = added - read - unread
end
redis.call('HSET', KEYS[2], 'count', lost, 'last_delivered_id', position, 'entries_added', added)
return {math.max(lost - reported, 0), lost, position}
`)

// readCounterProbeScript reads past a trimmed gap on a scratch stream, which
// it deletes again, and returns the group's entries-read counter. The
// counter is 2 where it adds one per delivered entry, as trimCheckScript
// needs, and 3 where Redis moves it past the gap. KEYS: scratch stream.
var readCounterProbeScript = redis.NewScript(`
redis.call('DEL', KEYS[1])
for i = 1, 3 do
  redis.call('XADD', KEYS[1], i .. '-1', 'f', 'v')
end
redis.call('XGROUP', 'CREATE', KEYS[1], 'probe', '0')
redis.call('XREADGROUP', 'GROUP', 'probe', 'probe', 'COUNT', 1, 'STREAMS', KEYS[1], '>')
redis.call('XTRIM', KEYS[1], 'MAXLEN', 1)
redis.call('XREADGROUP', 'GROUP', 'probe', 'probe', 'COUNT', 1, 'STREAMS', KEYS[1], '>')
local group = redis.call('XINFO', 'GROUPS', KEYS[1])[1]
redis.call('DEL', KEYS[1])
for i = 1, #group, 2 do
  if group[i] == 'entries-read' then
    return group[i + 1]
  end
end
return false
`)

// probeReadCounter warns when this Redis moves a group's read counter past
// the entries trimmed before it read them. trimCheckScript then counts only
// the events trimmed while a check found the group before the stream's
// first entry, so its count is a lower bound.
//
// NOTE: only Redis 7.0.15, which returns 2, has run this. A change merged
// into Redis in 2025 re-estimates the counter when a group's last delivered
// id is before the first entry, so releases with it return 3 and warn.
func (sub *subscription) probeReadCounter() {
	ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
	defer cancel()
	read, err := readCounterProbeScript.Run(ctx, sub.client, []string{sub.keys.trimmed + ":probe"}).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		sub.warn("probe of the read counter of consumer groups failed", err)
		return
	}
	if read == 2 {
		return
	}
	sub.failures.Log(sub.log, slog.LevelWarn,
		"trimmed_unread is a lower bound: this Redis moves a group's read counter past trimmed entries",
		slog.Int64("entries_read", read))
}

// checkTrimmed reports events that the stream's trim removed before this
// handler's group read them. Trimming keeps about Config.StreamMaxLen
// entries whatever the groups have read, so a handler that falls further
// behind, or stays stopped while that many events arrive, never receives the
// oldest. Redis gives no signal of it, so a subscription runs
// trimCheckScript when it starts, at every sweep and when it stops. A loss
// is reported once, by the first check of any process of the handler that
// runs after it. The count is exact where the read counter adds one per
// delivered entry, and a lower bound elsewhere; see probeReadCounter. The
// check takes at most redisCallTimeout.
//
// TODO: events trimmed while the group has no valid read counter, as
// between its creation at "0" and its first read, are not counted.
func (sub *subscription) checkTrimmed() {
	ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
	defer cancel()
	reply, err := trimCheckScript.Run(ctx, sub.client,
		[]string{sub.keys.stream, sub.keys.trimmed}, sub.keys.group).Slice()
	if errors.Is(err, redis.Nil) {
		return
	}
	if err != nil {
		sub.warn("check for trimmed events failed", err)
		return
	}
	if len(reply) != 3 {
		return
	}
	newLost, _ := reply[0].(int64)
	totalLost, _ := reply[1].(int64)
	position, _ := reply[2].(string)
	if newLost <= 0 {
		return
	}
	sub.log.LogAttrs(ctx, core.LevelCritical,
		"events were trimmed from the stream before this handler read them; raise StreamMaxLen",
		slog.Int64("trimmed_unread", newLost),
		slog.Int64("trimmed_unread_total", totalLost),
		slog.String("last_delivered_id", position),
		slog.Int64("stream_max_len", sub.cfg.StreamMaxLen))
}
