package memory

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/deadletter/deadletter/core"
)

// retryStateKeys are the metadata keys that a nacked message hands on to its
// next delivery, as a broker with Capabilities.RetryState stores them.
var retryStateKeys = []string{
	core.MetadataLastError,
	core.MetadataErrorType,
	core.MetadataFirstFailedAt,
	core.MetadataDeadLetterPending,
}

// broker holds the topics of one adapter: each topic's retained events and
// the delivery state of each handler group that reads it. One mutex guards
// it all, which keeps the locking simple at some cost in throughput.
type broker struct {
	streamMaxLen int

	mu          sync.Mutex
	topics      map[string]*topic
	timers      map[*time.Timer]struct{}
	subscribers map[*Subscriber]struct{}
	closed      bool
}

// record is one published event in a topic's log. It is never changed after
// publishing, so deliveries share it.
type record struct {
	seq      uint64
	uuid     string
	payload  []byte
	metadata message.Metadata
}

type topic struct {
	name string

	// records holds the retained events, oldest first, with increasing seq.
	// lastSeq is the seq of the newest event published, 0 before the first.
	records []*record
	lastSeq uint64
	groups  map[string]*group
}

// group is one handler's view of a topic: how far it has read the log and
// which events wait to be delivered again.
type group struct {
	topic *topic

	// cursor is the seq of the first record never delivered to the group.
	cursor uint64

	// ready holds the deliveries due again, in front of the unread log.
	ready []*delivery

	// wake is closed and replaced whenever a delivery becomes ready.
	wake chan struct{}
}

// delivery is one event on its way to a group, with what the group has
// recorded about it.
type delivery struct {
	record *record

	// count is how often the event has been emitted to the group.
	count int

	// state holds the retry state keys of the last nack.
	state map[string]string
}

func newBroker(streamMaxLen int) *broker {
	return &broker{
		streamMaxLen: streamMaxLen,
		topics:       map[string]*topic{},
		timers:       map[*time.Timer]struct{}{},
		subscribers:  map[*Subscriber]struct{}{},
	}
}

// publish appends copies of the messages to the topic's log, trims it and
// wakes the groups reading it.
func (b *broker) publish(name string, messages []*message.Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("publish to topic %q: memory adapter %w", name, core.ErrClosed)
	}

	t := b.topic(name)
	for _, msg := range messages {
		if msg == nil {
			continue
		}
		t.lastSeq++
		t.records = append(t.records, &record{
			seq:      t.lastSeq,
			uuid:     msg.UUID,
			payload:  slices.Clone(msg.Payload),
			metadata: maps.Clone(msg.Metadata),
		})
	}
	if b.streamMaxLen > 0 && len(t.records) > b.streamMaxLen {
		excess := len(t.records) - b.streamMaxLen
		clear(t.records[:excess])
		t.records = slices.Delete(t.records, 0, excess)
	}

	for _, g := range t.groups {
		g.signal()
	}
	return nil
}

// group returns the handler's group on the topic, creating both as needed.
// A new group starts at the oldest retained event.
func (b *broker) group(topicName, handler string) (*group, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("subscribe handler %q to topic %q: memory adapter %w",
			handler, topicName, core.ErrClosed)
	}

	t := b.topic(topicName)
	g, ok := t.groups[handler]
	if !ok {
		g = &group{topic: t, wake: make(chan struct{})}
		t.groups[handler] = g
	}
	return g, nil
}

func (b *broker) topic(name string) *topic {
	t, ok := b.topics[name]
	if !ok {
		t = &topic{name: name, groups: map[string]*group{}}
		b.topics[name] = t
	}
	return t
}

// next waits for the group's next delivery, or returns false once ctx is
// done.
func (b *broker) next(ctx context.Context, g *group) (*delivery, bool) {
	for ctx.Err() == nil {
		b.mu.Lock()
		d := g.take()
		wake := g.wake
		b.mu.Unlock()

		if d != nil {
			return d, true
		}
		select {
		case <-wake:
		case <-ctx.Done():
		}
	}
	return nil, false
}

// unsent puts back a delivery taken by a subscriber that closed before
// emitting it. It goes first, and does not count as delivered.
func (b *broker) unsent(g *group, d *delivery) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d.count--
	g.ready = slices.Insert(g.ready, 0, d)
	g.signal()
}

// nack stores the retry state of a nacked message and schedules its next
// delivery after the pause in its core.MetadataRetryAfter. The pause runs on
// a timer, so the group's other events keep flowing meanwhile.
func (b *broker) nack(g *group, d *delivery, metadata message.Metadata) {
	state := map[string]string{}
	for _, key := range retryStateKeys {
		if value, ok := metadata[key]; ok {
			state[key] = value
		}
	}

	// A missing or malformed pause means at once, which is what the metadata
	// contract requires for a message nacked without one.
	pause, err := time.ParseDuration(metadata.Get(core.MetadataRetryAfter))
	if err != nil || pause <= 0 {
		b.requeue(g, d, state)
		return
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	var timer *time.Timer
	timer = time.AfterFunc(pause, func() {
		b.mu.Lock()
		delete(b.timers, timer)
		b.mu.Unlock()
		b.requeue(g, d, state)
	})
	b.timers[timer] = struct{}{}
}

// requeue makes a delivery ready again, after the group's other ready
// deliveries and before its unread events.
func (b *broker) requeue(g *group, d *delivery, state map[string]string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	d.state = state
	g.ready = append(g.ready, d)
	g.signal()
}

// replay makes rec ready for one handler's group on the topic, with a fresh
// delivery count. It fails when the handler has never subscribed to the
// topic.
func (b *broker) replay(topicName, handler string, rec *record) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.topics[topicName]
	var g *group
	if ok {
		g = t.groups[handler]
	}
	if g == nil {
		return fmt.Errorf("%w: handler %q on topic %q", core.ErrUnknownHandler, handler, topicName)
	}
	g.ready = append(g.ready, &delivery{record: rec})
	g.signal()
	return nil
}

// close stops the retry timers and rejects further publishing and
// subscribing. It returns the subscribers still open, for the caller to
// close outside the lock.
func (b *broker) close() []*Subscriber {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for timer := range b.timers {
		timer.Stop()
	}
	clear(b.timers)
	return slices.Collect(maps.Keys(b.subscribers))
}

func (b *broker) addSubscriber(s *Subscriber) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("create subscriber for handler %q: memory adapter %w", s.handler, core.ErrClosed)
	}
	b.subscribers[s] = struct{}{}
	return nil
}

func (b *broker) removeSubscriber(s *Subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subscribers, s)
}

// take returns the group's next delivery, or nil when there is none. The
// caller holds the broker's lock.
func (g *group) take() *delivery {
	if len(g.ready) > 0 {
		d := g.ready[0]
		g.ready[0] = nil
		g.ready = g.ready[1:]
		d.count++
		return d
	}

	t := g.topic
	if len(t.records) == 0 || g.cursor > t.lastSeq {
		return nil
	}
	// Events trimmed before the group read them are skipped, as a reader of
	// a capped Redis stream skips them.
	first := t.records[0].seq
	g.cursor = max(g.cursor, first)
	rec := t.records[g.cursor-first]
	g.cursor++
	return &delivery{record: rec, count: 1}
}

func (g *group) signal() {
	close(g.wake)
	g.wake = make(chan struct{})
}

// message builds the message emitted for d: the published payload and
// metadata, the retry state of the last nack, the delivery count and where
// the event was read from.
func (d *delivery) message(ctx context.Context, topicName string) *message.Message {
	msg := message.NewMessage(d.record.uuid, slices.Clone(d.record.payload))
	maps.Copy(msg.Metadata, d.record.metadata)
	for _, key := range retryStateKeys {
		delete(msg.Metadata, key)
	}
	delete(msg.Metadata, core.MetadataRetryAfter)
	maps.Copy(msg.Metadata, d.state)

	msg.Metadata.Set(core.MetadataDeliveryCount, strconv.Itoa(d.count))
	msg.Metadata.Set(core.MetadataSourceStream, streamName(topicName))
	msg.Metadata.Set(core.MetadataSourceID, strconv.FormatUint(d.record.seq, 10))
	msg.SetContext(ctx)
	return msg
}

// streamName returns the name under which the adapter reports a topic as a
// message's source stream.
func streamName(topicName string) string {
	return "memory:" + topicName
}
