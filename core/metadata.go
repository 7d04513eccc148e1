package core

// Message metadata keys shared by subscribers and the retry middleware.
//
// A subscriber that can deliver a nacked message again later sets
// MetadataDeliveryCount on every message it emits. By doing so it promises
// that on Nack it will not deliver the message again before the pause in
// MetadataRetryAfter, and that the count it reports on the next delivery is
// one higher. The middleware then schedules retries through the broker and
// never sleeps in the handler. Without MetadataDeliveryCount the middleware
// falls back to retrying in place, sleeping between attempts.
const (
	// MetadataDeliveryCount is how often the broker has delivered the
	// message to this handler, this delivery included, as a decimal.
	MetadataDeliveryCount = "deadletter_delivery_count"

	// MetadataRetryAfter is the pause the subscriber waits before it
	// delivers a nacked message again, in time.ParseDuration form. A nacked
	// message without it is delivered again at once.
	MetadataRetryAfter = "deadletter_retry_after"

	// MetadataLastError, MetadataErrorType and MetadataFirstFailedAt carry a
	// failed attempt's outcome. The middleware sets them before Nack; a
	// subscriber whose adapter declares Capabilities.RetryState stores them
	// with the message and sets them again on the next delivery.
	MetadataLastError     = "deadletter_last_error"
	MetadataErrorType     = "deadletter_error_type"
	MetadataFirstFailedAt = "deadletter_first_failed_at"

	// MetadataDeadLetterPending marks a message whose handler has given up
	// but whose DLQ write failed; its value is the number of attempts made.
	// On the next delivery the middleware writes the entry again without
	// calling the handler. Subscribers store it like the outcome keys.
	MetadataDeadLetterPending = "deadletter_dead_letter_pending"

	// MetadataSourceStream and MetadataSourceID record where the message was
	// read from; they end up in a dead letter entry's source fields.
	MetadataSourceStream = "deadletter_source_stream"
	MetadataSourceID     = "deadletter_source_id"

	// MetadataDecodeError is set by a subscriber on a message it could not
	// decode from the broker's form. The payload then holds the raw bytes,
	// and the middleware dead-letters the message without calling the
	// handler.
	MetadataDecodeError = "deadletter_decode_error"

	// MetadataReplayCount counts how often the event has been replayed from
	// the DLQ, as a decimal.
	MetadataReplayCount = "deadletter_replay_count"
)
