package nats

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/deadletter/deadletter/core"
)

// pullExpiry bounds how long one pull request waits on the server. A short
// expiry bounds the stall when a pull request is lost: against
// nats-server 2.9.10 a subscription was seen waiting with messages pending
// and no pull request on the server until the request expired, 30 s by
// default.
//
// TODO: find why the pull request is lost; until then a subscription under
// load against nats-server 2.9 can still stall for about 2 s. Against
// 2.15.3 no stall was seen.
const pullExpiry = 2 * time.Second

// subscription pulls one handler's messages of one event type and hands
// them out on out, up to MaxInFlight at a time, each in a goroutine that
// waits for its Ack or Nack.
type subscription struct {
	*Subscriber
	eventType string
	consumer  jetstream.Consumer
	log       *slog.Logger

	// ctx ends when the subscriber closes or the context given to
	// Subscribe ends.
	ctx    context.Context
	cancel context.CancelFunc

	out      chan *message.Message
	slots    chan struct{}
	inFlight sync.WaitGroup
}

func (s *Subscriber) newSubscription(ctx context.Context, eventType string) (*subscription, error) {
	setupCtx, cancelSetup := context.WithTimeout(ctx, setupTimeout)
	defer cancelSetup()
	consumer, err := s.ensureConsumer(setupCtx, eventType)
	if err != nil {
		return nil, err
	}

	sub := &subscription{
		Subscriber: s,
		eventType:  eventType,
		consumer:   consumer,
		log:        s.log.With(slog.String(core.LogEventType, eventType)),
		out:        make(chan *message.Message),
		slots:      make(chan struct{}, s.adapter.cfg.MaxInFlight),
	}
	sub.ctx, sub.cancel = context.WithCancel(ctx)
	go func() {
		select {
		case <-s.closing:
			sub.cancel()
		case <-sub.ctx.Done():
		}
	}()
	return sub, nil
}

// run pulls messages until the subscription ends, then hands back the
// buffered ones, waits for those handed out and closes out.
func (sub *subscription) run() {
	defer close(sub.out)
	defer sub.inFlight.Wait()
	swept := make(chan struct{})
	go sub.sweepLoop(swept)
	defer func() { <-swept }()
	defer sub.cancel()

	for sub.ctx.Err() == nil {
		// A message waits in the client's buffer without in-progress
		// signals, so the buffer holds no more than MaxInFlight. A larger
		// one would keep messages past AckWait and have them delivered
		// twice when handlers are slow.
		batch := min(sub.adapter.cfg.BatchSize, sub.adapter.cfg.MaxInFlight)
		iter, err := sub.consumer.Messages(jetstream.PullMaxMessages(batch),
			jetstream.PullExpiry(pullExpiry))
		if err != nil {
			sub.log.Error("pull from consumer failed; retrying",
				slog.String("consumer", consumerName(sub.handler, sub.eventType)),
				slog.String(core.LogError, err.Error()))
			sub.pauseThenReopen()
			continue
		}
		sub.pull(iter)
		if sub.ctx.Err() == nil {
			sub.pauseThenReopen()
		}
	}
}

// pull hands out messages from iter until the subscription ends or the
// server ends the pull, as when the consumer is deleted.
func (sub *subscription) pull(iter jetstream.MessagesContext) {
	stopDraining := context.AfterFunc(sub.ctx, iter.Drain)
	defer stopDraining()
	defer iter.Stop()

	for {
		if !sub.takeSlot() {
			sub.nakBuffered(iter)
			return
		}
		// The context bounds the wait even if draining the pull were slow
		// to end it.
		msg, err := iter.Next(jetstream.NextContext(sub.ctx))
		if err != nil {
			<-sub.slots
			if sub.ctx.Err() != nil {
				sub.nakBuffered(iter)
				return
			}
			// With the default options Next returns an error once the
			// pull has ended for good, as when the consumer was deleted
			// or the connection closed. It also returns one when
			// heartbeats stop, which can happen across a server restart.
			// A new pull, after resubscribePause, also recreates a
			// consumer the server lost.
			sub.log.Warn("pull subscription ended; subscribing again", slog.String(core.LogError, err.Error()))
			return
		}
		if sub.ctx.Err() != nil {
			<-sub.slots
			sub.nak(msg, 0)
			sub.nakBuffered(iter)
			return
		}

		sub.inFlight.Add(1)
		go func() {
			defer sub.inFlight.Done()
			defer func() { <-sub.slots }()
			sub.deliver(msg)
		}()
	}
}

// takeSlot waits for room among the messages in flight. It returns false
// when the subscription ends first.
func (sub *subscription) takeSlot() bool {
	select {
	case sub.slots <- struct{}{}:
		return true
	case <-sub.ctx.Done():
		return false
	}
}

// nakBuffered gives back the messages that the client buffered but did not
// hand out, so that other subscribers get them at once instead of after
// AckWait.
func (sub *subscription) nakBuffered(iter jetstream.MessagesContext) {
	iter.Drain()
	for {
		msg, err := iter.Next(jetstream.NextMaxWait(time.Second))
		if err != nil {
			return
		}
		sub.nak(msg, 0)
	}
}

func (sub *subscription) pauseThenReopen() {
	select {
	case <-time.After(resubscribePause):
	case <-sub.ctx.Done():
		return
	}
	ctx, cancel := context.WithTimeout(sub.ctx, setupTimeout)
	defer cancel()
	consumer, err := sub.ensureConsumer(ctx, sub.eventType)
	if err != nil {
		sub.log.Error("create consumer failed; retrying", slog.String(core.LogError, err.Error()))
		return
	}
	sub.consumer = consumer
}

// deliver hands msg out as a Watermill message and settles it on the
// server once the handler acknowledges it.
func (sub *subscription) deliver(msg jetstream.Msg) {
	if target := msg.Headers().Get(replayHandlerHeader); target != "" && target != sub.handler {
		// A replay for another handler of the same event type.
		if err := msg.Ack(); err != nil {
			sub.warn(sub.log,
				"acknowledge replay for another handler failed; JetStream delivers it again after AckWait", err)
		}
		return
	}

	// The in-progress signals start now, not once the handler has the
	// message, because reading its retry state and waiting for the reader
	// to take it count against AckWait too.
	ticker := time.NewTicker(sub.adapter.cfg.AckWait / 3)
	defer ticker.Stop()
	wm, delivery := sub.toWatermill(msg)

	// The message's context does not end with the subscription's, so that
	// a shutdown lets running handlers finish instead of failing them
	// mid-attempt. await waits for them up to CloseTimeout.
	msgCtx, cancel := context.WithCancel(context.WithoutCancel(sub.ctx))
	defer cancel()
	wm.SetContext(msgCtx)

	for {
		select {
		case sub.out <- wm:
			sub.await(wm, delivery, ticker)
			return
		case <-ticker.C:
			sub.extendAckWait(delivery)
		case <-sub.ctx.Done():
			sub.nak(msg, 0)
			return
		}
	}
}

// await waits for the handler's Ack or Nack. Meanwhile it sends JetStream an
// in-progress signal at each tick, every third of AckWait, so that a long
// handler does not see its message delivered again. After the
// subscription ends it waits up to CloseTimeout, then leaves the message
// unacknowledged for JetStream to deliver again after AckWait.
func (sub *subscription) await(wm *message.Message, d delivery, ticker *time.Ticker) {
	ending := sub.ctx.Done()
	var deadline <-chan time.Time
	for {
		select {
		case <-wm.Acked():
			sub.ack(d)
			return
		case <-wm.Nacked():
			sub.nackWithState(wm, d)
			return
		case <-ticker.C:
			sub.extendAckWait(d)
		case <-ending:
			ending = nil
			timer := time.NewTimer(sub.adapter.cfg.CloseTimeout)
			defer timer.Stop()
			deadline = timer.C
		case <-deadline:
			d.log(sub.log).Warn("message still unacknowledged at close; JetStream delivers it again after AckWait",
				slog.Duration("ack_wait", sub.adapter.cfg.AckWait))
			return
		}
	}
}

// extendAckWait sends JetStream an in-progress signal for the message, which
// restarts its AckWait.
func (sub *subscription) extendAckWait(d delivery) {
	if err := d.msg.InProgress(); err != nil {
		sub.warn(d.log(sub.log), "extend ack wait failed", err)
	}
}

// ack acknowledges the message without waiting for the server's reply, so
// that a handler's throughput does not depend on the round trip. An ack that
// cannot be sent is logged; JetStream then delivers the message again after
// AckWait, so an ack is never lost without a redelivery.
func (sub *subscription) ack(d delivery) {
	if err := d.msg.Ack(); err != nil {
		sub.warn(d.log(sub.log), "acknowledge message failed; JetStream delivers it again after AckWait", err)
	}
	if !d.hasState {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), sub.adapter.cfg.PublishTimeout)
	defer cancel()
	if err := sub.adapter.retryState.clear(ctx, d.stateSubject); err != nil {
		// NOTE: until the state expires, the sweep dead-letters the handled
		// event if the stream drops it. The entry is a duplicate, not a loss.
		sub.warn(d.log(sub.log), "clear retry state failed; it expires after RetryStateMaxAge, and until then "+
			"a drop from the stream dead-letters the handled event", err)
	}
}

// nackWithState stores the outcome that the middleware recorded on wm, then
// naks the message with the pause in MetadataRetryAfter as its delay.
// NakWithDelay holds back only this message; the consumer goes on
// delivering the others.
func (sub *subscription) nackWithState(wm *message.Message, d delivery) {
	delay, err := parseRetryAfter(wm.Metadata.Get(core.MetadataRetryAfter))
	if err != nil {
		d.log(sub.log).Warn("invalid retry pause; delivering again at once", slog.String(core.LogError, err.Error()))
	}

	if d.stateSubject != "" {
		ctx, cancel := context.WithTimeout(context.Background(), sub.adapter.cfg.PublishTimeout)
		_, err := sub.adapter.retryState.save(ctx, d.stateSubject, wm.Metadata, d.msg.Data())
		cancel()
		if err != nil {
			sub.warn(d.log(sub.log), "save retry state failed; the next delivery lacks the last error, and a "+
				"drop by MaxEventsPerType during the pause is not dead-lettered", err)
		}
	}
	// The retry state keeps a copy of the event, so that sweepDropped can
	// dead-letter it if MaxEventsPerType drops it during the pause.
	sub.nakLogged(d, delay)
}

func (sub *subscription) nakLogged(d delivery, delay time.Duration) {
	if err := nakWithDelay(d.msg, delay); err != nil {
		sub.warn(d.log(sub.log), "nack message failed; JetStream delivers it again after AckWait", err)
	}
}

// nak gives back a message that was never handed out.
func (sub *subscription) nak(msg jetstream.Msg, delay time.Duration) {
	if err := nakWithDelay(msg, delay); err != nil {
		sub.warn(sub.log, "give back buffered message failed; JetStream delivers it again after AckWait", err)
	}
}

// warn logs a failed call at warning level, at most once per
// logthrottle.Interval for each log message across the adapter, because
// while the server is unreachable every message in flight fails the same
// way.
func (sub *subscription) warn(logger *slog.Logger, msg string, err error) {
	sub.adapter.failures.Log(logger, slog.LevelWarn, msg, slog.String(core.LogError, err.Error()))
}

func nakWithDelay(msg jetstream.Msg, delay time.Duration) error {
	if delay > 0 {
		return msg.NakWithDelay(delay)
	}
	return msg.Nak()
}

func parseRetryAfter(value string) (time.Duration, error) {
	if value == "" {
		return 0, nil
	}
	delay, err := time.ParseDuration(value)
	if err != nil {
		return 0, fmt.Errorf("metadata %s: %w", core.MetadataRetryAfter, err)
	}
	return max(delay, 0), nil
}

// delivery is a handed-out message with the stream position it came from.
type delivery struct {
	msg      jetstream.Msg
	stream   string
	sequence uint64

	// stateSubject is the subject of this message's retry state, and
	// hasState reports whether a state may exist: one was found on this
	// delivery, or loading it failed.
	stateSubject string
	hasState     bool
}

func (d delivery) log(logger *slog.Logger) *slog.Logger {
	return logger.With(slog.String(core.LogStream, d.stream), slog.Uint64("stream_sequence", d.sequence))
}

// toWatermill decodes msg. A message whose headers cannot be decoded keeps
// its data as the payload and gets MetadataDecodeError, so that the
// middleware dead-letters it and the subscription goes on.
func (sub *subscription) toWatermill(msg jetstream.Msg) (*message.Message, delivery) {
	d := delivery{msg: msg}
	uuid, metadata, decodeErr := decodeHeaders(msg.Headers())
	if decodeErr != nil {
		metadata = message.Metadata{}
	}
	if uuid == "" {
		uuid = watermill.NewUUID()
	}
	wm := message.NewMessage(uuid, msg.Data())
	wm.Metadata = metadata
	// The delivery state comes from JetStream and the retry state stream,
	// never from a publisher's headers: a forged pending mark would
	// dead-letter the event unhandled.
	for _, key := range []string{core.MetadataRetryAfter, core.MetadataLastError, core.MetadataErrorType,
		core.MetadataFirstFailedAt, core.MetadataDeadLetterPending, core.MetadataDecodeError} {
		delete(wm.Metadata, key)
	}
	if decodeErr != nil {
		wm.Metadata.Set(core.MetadataDecodeError, fmt.Sprintf("decode nats headers: %v", decodeErr))
	}

	meta, err := msg.Metadata()
	if err != nil {
		wm.Metadata.Set(core.MetadataDecodeError, fmt.Sprintf("read jetstream metadata: %v", err))
		return wm, d
	}
	d.stream, d.sequence = meta.Stream, meta.Sequence.Stream
	d.stateSubject = sub.adapter.retryState.subject(sub.handler, sub.eventType, d.sequence)

	wm.Metadata.Set(core.MetadataDeliveryCount, strconv.FormatUint(meta.NumDelivered, 10))
	wm.Metadata.Set(core.MetadataSourceStream, meta.Stream)
	wm.Metadata.Set(core.MetadataSourceID, strconv.FormatUint(meta.Sequence.Stream, 10))

	// Only a message delivered before can have a stored outcome, so a
	// first delivery costs no lookup.
	if meta.NumDelivered > 1 {
		sub.restoreState(wm, &d)
	}
	return wm, d
}

func (sub *subscription) restoreState(wm *message.Message, d *delivery) {
	ctx, cancel := context.WithTimeout(context.Background(), sub.adapter.cfg.PublishTimeout)
	defer cancel()
	state, found, err := sub.adapter.retryState.load(ctx, d.stateSubject)
	if err != nil {
		sub.warn(d.log(sub.log), "load retry state failed; delivering without the last error", err)
		// The ack still clears the state, because a state left behind
		// would have the sweep dead-letter the handled event once the
		// stream drops it.
		d.hasState = true
		return
	}
	d.hasState = found
	for key, value := range state {
		wm.Metadata.Set(key, value)
	}
}
