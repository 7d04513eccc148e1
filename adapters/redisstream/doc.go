// Package redisstream is the Redis Streams adapter, the reference broker of
// deadletter.
//
// # Keys
//
// With the default prefix "events":
//
//   - events:<event_type> holds the events of one type, trimmed to about
//     10,000 entries. Each entry has the fields uuid, payload (the event's
//     JSON form) and, when present, metadata (a JSON object).
//   - Each handler is a consumer group on the streams it reads, named after
//     the handler, so handlers fail and retry independently and several
//     processes running one handler share its events.
//   - events:<event_type>:retries:<handler> is a sorted set of the entries
//     waiting for a retry, scored by due time in Unix milliseconds, and
//     events:<event_type>:retry-state:<handler> is a hash with a copy of each
//     such message and its delivery count.
//   - events:<event_type>:trimmed-unread:<handler> is a hash with the count
//     of events trimmed before the handler's group read them.
//   - events:dlq holds dead letters as flat fields, trimmed to about 5,000
//     entries; events:dlq:dropped counts entries the trim removed, and
//     events:dlq:replayed receives entries once they are replayed.
//
// # Why not watermill-redisstream
//
// The adapter implements Watermill's Publisher and Subscriber on go-redis
// directly rather than wrapping watermill-redisstream, because that
// subscriber reads one entry per round trip and waits for each
// acknowledgement before the next, stops consuming on an entry it cannot
// decode, and retries a nacked message in place, blocking the messages
// behind it. Here, a subscription reads entries in batches, hands out up to
// MaxInFlight messages at once, acknowledges in pipelined batches, turns an
// undecodable entry into a message that the retry middleware dead-letters,
// and parks a nacked message in the retry schedule.
//
// # Retries and restarts
//
// A failed attempt moves the entry's pending-list record to a reserved
// consumer, "deadletter-retry", and schedules it in the retries set. When it
// comes due, one consumer of the handler takes it with a lease, so a retry
// interrupted by a crash comes due again when the lease ends. The delivery
// count lives in Redis, so attempts made before a restart count after it.
// Entries left unacknowledged by a consumer that died are claimed by a live
// one after ClaimIdle.
//
// TODO: keys are not hash-tagged, so Redis Cluster is not supported yet; the
// retry scripts touch the stream and its retry keys together.
package redisstream
