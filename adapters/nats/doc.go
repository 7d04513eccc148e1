// Package nats is deadletter's adapter for NATS JetStream.
//
// # Names
//
// Every name starts with Config.Prefix ("deadletter" by default); stream
// names use it upper-cased. The Redis adapter's names map as follows:
//
//	Redis                  NATS subject                          NATS stream
//	events:<event_type>    deadletter.events.<event_type>        DEADLETTER_EVENTS
//	events:dlq             deadletter.dlq                        DEADLETTER_DLQ
//	events:dlq:replayed    deadletter.dlq.replayed.<dlq id>      DEADLETTER_DLQ_REPLAYED
//	events:dlq:dropped     key "deleted" in bucket DEADLETTER_DLQ_COUNTERS (see Dropped)
//	(pending entries)      deadletter.retry.<handler>.<event_type>.<seq>  DEADLETTER_RETRY_STATE
//
// Event types are dot-separated words, so each one is a subject of its own
// on one events stream, which keeps at most Config.MaxEventsPerType
// (10,000) events per type. A handler is a durable pull consumer on that
// stream named "<handler>@<event type with '~' for '.'>", such as
// "send_welcome_email@patient~registered", filtered to its event type's
// subject. The event type is part of the name because consumer names are
// per stream: one handler name may serve several event types. Every
// subscriber of a handler, in any process, pulls from the same consumer, so
// they share its events.
//
// # Messages
//
// A message's payload is the NATS data. Its Watermill UUID travels in the
// header Watermill-Uuid and each metadata key in a header of the same name.
// Header values are one line, so backslashes, control characters and a
// space at either end are written as backslash escapes (\\, \n, \t, \x20).
// Headers starting with "Nats-" belong to NATS and are not metadata.
//
// A message, headers and data, must fit in the server's max payload (1 MiB
// by default). Publish rejects a message that leaves less than 64 KiB of it
// free, which its DLQ entry's fields need, so that every event published
// through the adapter can be dead-lettered whole.
//
// Subscribers set core.MetadataDeliveryCount to JetStream's delivery count,
// core.MetadataSourceStream to the stream name and core.MetadataSourceID to
// the stream sequence. A Nack becomes NakWithDelay with the pause in
// core.MetadataRetryAfter, which holds back only that message. Consumers
// never stop redelivering on their own (MaxDeliver is -1): the retry
// middleware dead-letters by the delivery count. A running handler sends an
// in-progress signal every third of Config.AckWait, so its message is not
// delivered elsewhere meanwhile. Acks are sent without waiting for the
// server's reply. An ack that cannot be sent is logged, and an ack lost on
// the way leads to a redelivery after AckWait, never to a lost event.
//
// JetStream cannot change a message it delivers again, so the outcome of a
// failed attempt (core.MetadataLastError, MetadataErrorType,
// MetadataFirstFailedAt and MetadataDeadLetterPending) is written on Nack to
// the retry state stream, one subject per handler and event, and read back
// on the next delivery; the ack purges it. The adapter therefore declares
// Capabilities.RetryState. State older than Config.RetryStateMaxAge (7 days)
// expires. The state also keeps a copy of the event: every AckWait each
// subscription dead-letters, with error type "trimmed", the events of its
// handler that Config.MaxEventsPerType dropped while they waited for a
// retry.
//
// A message whose headers cannot be decoded is delivered with its data as
// the payload and core.MetadataDecodeError set, so the middleware
// dead-letters it and the subscription goes on.
//
// # Dead letter queue
//
// An entry is one message on the DLQ stream: the event's JSON as the data
// and every other field of core.Entry.Fields as a header, so that
// `nats stream view DEADLETTER_DLQ` reads well. Its id is the stream
// sequence, as a decimal. Header values are cut to fit JetStream's limit of
// 64 KiB, the longest first, each ending with a note of its whole length.
// The entry of a message that another tool published too large for it
// keeps only the start of the data, and its error starts with a note of the
// cut.
//
// The stream keeps Config.DLQMaxLen (5,000) entries and drops the oldest
// beyond. Dropped counts those as the stream's last sequence, which counts
// every entry ever added, less the entries still there and those removed by
// Delete and MoveToReplayed, which a counter in the key-value bucket
// "<PREFIX>_DLQ_COUNTERS" records. Purging the stream by hand counts its
// entries as dropped.
//
// MoveToReplayed copies an entry to the replayed stream on a subject ending
// with the entry's id, unless the subject's last message is already a copy
// of it, and then deletes the original, so a run interrupted between the
// two steps can be repeated safely. A copy is recognised by a SHA-256 hash
// of the entry's data and headers, not by the id alone. When the DLQ stream
// is deleted and created again, its ids start again at 1, and the replayed
// stream keeps the copies of the older entries with the same ids.
//
// Replay publishes the entry's event on its event type's subject with the
// header Deadletter-Replay-Handler naming the handler that failed.
// Subscribers of other handlers acknowledge it without handing it out. The
// publish carries a message id made of the entry's id and hash, and the
// events stream drops a second publish with that id for 24 hours. The entry
// then moves as MoveToReplayed moves it, so a replay run again delivers the
// event once.
package nats
