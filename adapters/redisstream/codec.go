package redisstream

import (
	"encoding/json"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/redact"
)

// Field names of an event stream entry. The payload is the event's JSON
// form, so `redis-cli XRANGE events:patient.registered - +` reads well.
const (
	fieldUUID     = "uuid"
	fieldPayload  = "payload"
	fieldMetadata = "metadata"
)

// encode returns the stream entry fields for msg. Metadata is written only
// when present, as one JSON object.
func encode(msg *message.Message) ([]any, error) {
	values := []any{fieldUUID, msg.UUID, fieldPayload, []byte(msg.Payload)}
	if len(msg.Metadata) > 0 {
		raw, err := json.Marshal(msg.Metadata)
		if err != nil {
			return nil, fmt.Errorf("encode metadata of message %s: %w", msg.UUID, err)
		}
		values = append(values, fieldMetadata, raw)
	}
	return values, nil
}

// decode turns stream entry fields back into a message. An entry that does
// not have the adapter's form still becomes a message, marked with
// core.MetadataDecodeError and carrying the raw bytes, so that the retry
// middleware dead-letters it and consumption goes on.
func decode(id string, fields map[string]any) *message.Message {
	payload, hasPayload := fields[fieldPayload].(string)
	uuid, _ := fields[fieldUUID].(string)
	if uuid == "" {
		uuid = id
	}

	if !hasPayload {
		msg := message.NewMessage(uuid, rawFields(fields))
		msg.Metadata.Set(core.MetadataDecodeError,
			fmt.Sprintf("stream entry %s has no %q field; event_data holds all its fields as JSON", id, fieldPayload))
		return msg
	}

	msg := message.NewMessage(uuid, []byte(payload))
	if raw, ok := fields[fieldMetadata].(string); ok && raw != "" {
		if err := json.Unmarshal([]byte(raw), &msg.Metadata); err != nil {
			// A failed decode may have stored some of the keys.
			msg.Metadata = message.Metadata{}
			msg.Metadata.Set(core.MetadataDecodeError,
				fmt.Sprintf("stream entry %s: metadata is not a JSON object of strings: %s", id,
					redact.JSONError(err)))
			return msg
		}
		// JSON null sets the map to nil, and the subscription sets keys on it.
		if msg.Metadata == nil {
			msg.Metadata = message.Metadata{}
		}
	}
	// The delivery state comes from the broker, never from what a publisher
	// wrote: a forged pending mark would dead-letter the event unhandled.
	for _, key := range deliveryStateKeys {
		delete(msg.Metadata, key)
	}
	return msg
}

// deliveryStateKeys are the metadata keys that the subscription and the
// retry middleware set; an entry read from the stream must not carry them.
var deliveryStateKeys = []string{
	core.MetadataDeliveryCount, core.MetadataRetryAfter, core.MetadataLastError, core.MetadataErrorType,
	core.MetadataFirstFailedAt, core.MetadataDeadLetterPending, core.MetadataSourceStream,
	core.MetadataSourceID, core.MetadataDecodeError,
}

// rawFields encodes every field of an undecodable entry as one JSON object.
// Values that are not valid UTF-8 are altered by the encoding.
func rawFields(fields map[string]any) []byte {
	raw, err := json.Marshal(fields)
	if err != nil {
		return []byte(fmt.Sprint(fields))
	}
	return raw
}
