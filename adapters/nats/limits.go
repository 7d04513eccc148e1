package nats

import (
	"fmt"
	"net/textproto"

	"github.com/nats-io/nats.go"

	"github.com/deadletter/deadletter/core"
)

// A message's headers and data together must fit in the server's max
// payload (1 MiB by default). A DLQ entry carries its event's data and about
// 1 KiB of fields as headers, up to maxHeaderBytes with a long error, so an
// event near the limit would have a DLQ entry that the server rejects on
// every try.

// dlqHeaderRoom is the part of the server's max payload that Publish keeps
// for the headers of an event's DLQ entry: the entry's fields, the header
// framing and the headers that a replay adds. An event that leaves less is
// rejected, so that every event published through the adapter fits whole
// in its DLQ entry.
const dlqHeaderRoom = 64 << 10

// replayHeaderRoom is the room a DLQ entry keeps for the replayed_at and
// replay_count headers that MoveToReplayed adds to its copy.
const replayHeaderRoom = 128

// headerSize returns the bytes that header takes in a message, as nats.go
// writes it.
func headerSize(header nats.Header) int {
	if len(header) == 0 {
		return 0
	}
	size := len("NATS/1.0\r\n") + len("\r\n")
	for key, values := range header {
		for _, value := range values {
			size += len(key) + len(": ") + len(textproto.TrimString(value)) + len("\r\n")
		}
	}
	return size
}

// checkEventSize returns an error wrapping core.ErrInvalidEvent when msg
// leaves less than dlqHeaderRoom of maxPayload.
func checkEventSize(msg *nats.Msg, maxPayload int64) error {
	size := int64(len(msg.Data) + headerSize(msg.Header))
	if limit := maxPayload - dlqHeaderRoom; size > limit {
		return fmt.Errorf("%w: message of %d bytes is over %d bytes, the nats server's max payload of %d bytes "+
			"less %d bytes kept for the headers of its dead letter entry", core.ErrInvalidEvent, size, limit,
			maxPayload, dlqHeaderRoom)
	}
	return nil
}

// newEntryMsg returns the message that stores e on subject. When the whole
// event data does not fit in maxPayload, it keeps the start of the data
// and starts the error with a note of the cut and of where the whole
// message is. Only a message published by another tool can be that large,
// because Publish keeps dlqHeaderRoom free.
//
// TODO: mark a cut entry in a field of its own, so that replay skips it.
// Replaying it now publishes the cut data, which is dead-lettered again as
// undecodable.
func newEntryMsg(subject string, e core.Entry, maxPayload int64) *nats.Msg {
	msg := nats.NewMsg(subject)
	setEntryHeaders(msg, e.Fields())
	msg.Data = e.EventData
	if int64(len(msg.Data)+headerSize(msg.Header)+replayHeaderRoom) <= maxPayload {
		return msg
	}

	// The note with the whole length has at least as many digits as the
	// note with the length kept, so the room found with it is enough.
	whole := len(e.EventData)
	cut := e
	cut.Error = cutDataNote(e, whole, maxPayload) + e.Error
	msg = nats.NewMsg(subject)
	setEntryHeaders(msg, cut.Fields())
	kept := int(min(max(maxPayload-int64(headerSize(msg.Header)+replayHeaderRoom), 0), int64(whole)))

	cut.Error = cutDataNote(e, kept, maxPayload) + e.Error
	msg = nats.NewMsg(subject)
	setEntryHeaders(msg, cut.Fields())
	msg.Data = e.EventData[:kept]
	return msg
}

// cutDataNote returns the line that starts the error of an entry whose
// event data was cut to kept bytes.
func cutDataNote(e core.Entry, kept int, maxPayload int64) string {
	note := fmt.Sprintf("event_data cut at %d of %d bytes to fit the nats server's max payload of %d bytes.",
		kept, len(e.EventData), maxPayload)
	if e.SourceStream != "" && e.SourceID != "" {
		note += fmt.Sprintf(" The whole message is at sequence %s of stream %s.", e.SourceID, e.SourceStream)
	}
	return note + "\n"
}
