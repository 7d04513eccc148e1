package core

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Adapter connects deadletter to one broker. Topics passed to its publisher
// and subscribers are event types; the adapter maps them to its own names,
// such as the Redis stream "events:patient.registered".
type Adapter interface {
	// Name identifies the broker in logs and errors, for example "redis".
	Name() string

	// Publisher returns the publisher of events. It is shared and stays
	// open until the adapter is closed.
	Publisher() message.Publisher

	// Subscriber returns a subscriber that delivers events to one named
	// handler. Subscribers of the same handler, in this process or another,
	// share its events so that each is handled once; subscribers of
	// different handlers each receive every event.
	Subscriber(handler string) (message.Subscriber, error)

	// DLQ returns the adapter's dead letter queue.
	DLQ() DLQ

	// Capabilities declares which optional guarantees the adapter gives.
	Capabilities() Capabilities

	// Close releases the adapter's connections. Subscribers and the
	// publisher it returned must be closed first.
	Close() error
}

// Capabilities lists the optional guarantees of an adapter. The conformance
// suite skips, with a reason, each contract that needs a capability the
// adapter lacks.
type Capabilities struct {
	// Redelivery means subscribers set MetadataDeliveryCount and deliver a
	// nacked message again after MetadataRetryAfter, without blocking the
	// messages behind it.
	Redelivery bool

	// Durable means events, retry state and the DLQ outlive the process: a
	// new adapter on the same broker resumes where the old one stopped.
	Durable bool

	// CompetingConsumers means several subscribers of one handler, possibly
	// in other processes, share its events.
	CompetingConsumers bool

	// RetryState means the outcome metadata of a failed attempt (last
	// error, error type, first failure time) is stored by the broker and
	// returned with the next delivery.
	RetryState bool
}

// DLQ is a dead letter queue: an ordered store of entries, newest last, with
// a second store for entries that have been replayed.
type DLQ interface {
	// Add appends an entry and returns its id. It fails rather than losing
	// the entry.
	Add(ctx context.Context, e Entry) (string, error)

	// Len returns the number of entries.
	Len(ctx context.Context) (int64, error)

	// List returns entries newest first, as selected by opts.
	List(ctx context.Context, opts ListOptions) ([]Entry, error)

	// Get returns one entry, or an error wrapping ErrEntryNotFound.
	Get(ctx context.Context, id string) (Entry, error)

	// Delete removes the given entries and returns how many it removed.
	Delete(ctx context.Context, ids ...string) (int, error)

	// MoveToReplayed moves an entry to the replayed store, stamped with
	// replayedAt, in one step: the entry is never in both stores nor in
	// neither. It returns an error wrapping ErrEntryNotFound when the entry
	// is in neither store.
	MoveToReplayed(ctx context.Context, id string, replayedAt time.Time) error

	// Dropped returns how many entries the size cap has removed.
	Dropped(ctx context.Context) (int64, error)
}

// Replayer is implemented by a DLQ that can deliver a dead-lettered event
// again. Replay must deliver the event to the handler named in the entry and
// to no other handler, and move the entry to the replayed store, as one
// step: a replay interrupted and run again neither loses an entry nor
// delivers one twice. The entry in the replayed store has its replay_count
// raised by one, so it records how often the event was replayed. The delivered
// message carries the entry's
// replay_count plus one in core.MetadataReplayCount, and starts with a fresh
// attempt count. It returns an error wrapping ErrEntryNotFound when the
// entry is in neither store, nil when it was replayed before, and an error
// wrapping ErrUnknownHandler, leaving the entry in place, when the handler
// has never subscribed to the event's type.
type Replayer interface {
	Replay(ctx context.Context, id string, replayedAt time.Time) error
}

// ListOptions selects entries for DLQ.List.
type ListOptions struct {
	// Limit caps the number of entries returned. 0 means 100.
	Limit int

	// Before returns only entries older than this id, for paging; "" starts
	// from the newest.
	Before string

	// Replayed lists the replayed store instead of the DLQ.
	Replayed bool
}

// DefaultListLimit is the number of entries List returns when no limit is
// given.
const DefaultListLimit = 100
