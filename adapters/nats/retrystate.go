package nats

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/deadletter/deadletter/core"
)

// retryKeys are the metadata keys that carry a failed attempt's outcome to
// the next delivery. JetStream cannot change a message it delivers again,
// so the subscriber stores them in the retry state stream on Nack and reads
// them back when the message returns.
var retryKeys = []string{
	core.MetadataLastError,
	core.MetadataErrorType,
	core.MetadataFirstFailedAt,
	core.MetadataDeadLetterPending,
}

// copyKeys are the metadata keys that the retry state keeps, besides
// retryKeys, to build a DLQ entry for an event that the events stream drops
// while it waits for its retry. They are not set again on the next
// delivery, which gets them from JetStream and the message.
var copyKeys = []string{
	core.MetadataDeliveryCount,
	core.MetadataReplayCount,
}

// dataOmittedHeader replaces the event's data in a retry state whose data
// and headers together would exceed the server's max payload. Its value is
// the data's length in bytes.
const dataOmittedHeader = "deadletter_event_data_omitted"

// retryState stores the outcome of each event's last failed attempt, per
// handler, as the headers of the one message on the subject
// "<prefix>.retry.<handler>.<event_type>.<stream sequence>". The message's
// data is a copy of the event, kept in case the events stream drops the
// event before its retry.
type retryState struct {
	js            jetstream.JetStream
	stream        jetstream.Stream
	subjectPrefix string
}

// subject returns the subject of one event's state for one handler. The
// handler has no dots and the sequence is the last token, so the subject
// is unambiguous.
func (r *retryState) subject(handler, eventType string, seq uint64) string {
	return r.subjectPrefix + handler + "." + eventType + "." + strconv.FormatUint(seq, 10)
}

// save stores the retry keys of md, if it has any, with the copy keys and
// a copy of the event's data, replacing the state stored before. Data that
// would push the state past the server's max payload is left out and
// marked with dataOmittedHeader. It reports whether there was anything to
// store.
func (r *retryState) save(ctx context.Context, subject string, md message.Metadata, data []byte) (bool, error) {
	var fields []string
	for _, key := range retryKeys {
		if value := md.Get(key); value != "" {
			fields = append(fields, key, value)
		}
	}
	if len(fields) == 0 {
		return false, nil
	}
	for _, key := range copyKeys {
		if value := md.Get(key); value != "" {
			fields = append(fields, key, value)
		}
	}
	msg := nats.NewMsg(subject)
	setHeaders(msg, fields)
	if int64(len(data)+headerSize(msg.Header)) <= r.js.Conn().MaxPayload() {
		msg.Data = data
	} else {
		msg.Header.Set(dataOmittedHeader, strconv.Itoa(len(data)))
	}
	if _, err := r.js.PublishMsg(ctx, msg); err != nil {
		return false, fmt.Errorf("save retry state %s: %w", subject, err)
	}
	return true, nil
}

// load returns the stored retry keys, or found false when none are stored.
func (r *retryState) load(ctx context.Context, subject string) (state map[string]string, found bool, err error) {
	msg, err := r.stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("load retry state %s: %w", subject, err)
	}

	state = make(map[string]string, len(retryKeys))
	for _, key := range retryKeys {
		raw := msg.Header.Get(key)
		if raw == "" {
			continue
		}
		value, err := unescapeHeaderValue(raw)
		if err != nil {
			return nil, false, fmt.Errorf("load retry state %s: header %q: %w", subject, key, err)
		}
		state[key] = value
	}
	return state, true, nil
}

// clear removes the stored state. A purge leaves no marker behind, unlike a
// key-value delete.
func (r *retryState) clear(ctx context.Context, subject string) error {
	if err := r.stream.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
		return fmt.Errorf("clear retry state %s: %w", subject, err)
	}
	return nil
}
