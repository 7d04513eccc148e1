package redisstream

import "github.com/redis/go-redis/v9"

// The retry scripts keep a handler's retry schedule in two keys next to the
// stream: a sorted set of entry ids scored by due time, and a hash with a
// copy of each message and its delivery count. The copy lets a retry survive
// the stream being trimmed, and the count lives with it, because the pending
// list of a trimmed entry is gone. Each script runs atomically, so two
// consumers never take the same retry. Times come from the Redis server's
// clock, so hosts with skewed clocks agree on when a retry is due.
//
// A replayed event has no pending entry: its schedule member is
// "replay-<dlq id>" rather than a stream id, and the scripts and
// acknowledgements skip the pending list for it.
//
// While an entry waits for a retry, its pending list entry belongs to the
// parking consumer, which no process reads for. The sweep for entries of
// crashed consumers skips it.

// parkingConsumer owns the pending entries of events waiting for a retry.
const parkingConsumer = "deadletter-retry"

// parkScript schedules a retry. With mode "keep" an existing delivery
// count stays, since the retry schedule already counted this delivery; with
// "set" the given count replaces it, for a message handed back unhandled.
// KEYS: stream, retries, state. ARGV: group, parking consumer, id, pause
// in ms, message copy, delivery count so far, mode.
var parkScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[3])
redis.call('HSET', KEYS[3], 'd:' .. ARGV[3], ARGV[5])
if ARGV[7] == 'set' then
  redis.call('HSET', KEYS[3], 'n:' .. ARGV[3], ARGV[6])
else
  redis.call('HSETNX', KEYS[3], 'n:' .. ARGV[3], ARGV[6])
end
if string.match(ARGV[3], '^%d+%-%d+$') then
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
end
return 1
`)

// claimDueScript takes up to a limit of due retries. Each taken entry gets
// a lease instead of leaving the schedule: if the process dies while the
// handler runs, the entry comes due again when the lease ends. It returns
// id, delivery count and message copy for each entry, flattened.
// KEYS: retries, state. ARGV: limit, lease in ms.
var claimDueScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local taken = {}
for _, id in ipairs(ids) do
  local copy = redis.call('HGET', KEYS[2], 'd:' .. id)
  if copy then
    local count = redis.call('HINCRBY', KEYS[2], 'n:' .. id, 1)
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id)
    table.insert(taken, id)
    table.insert(taken, count)
    table.insert(taken, copy)
  else
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], 'n:' .. id)
  end
end
return taken
`)

// extendLeaseScript pushes back the lease of retries whose handler is still
// running. KEYS: retries. ARGV: lease in ms, ids.
var extendLeaseScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i])
end
return 1
`)
