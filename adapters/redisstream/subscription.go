package redisstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/logthrottle"
)

// redisCallTimeout bounds the calls a subscription makes outside its
// blocking read.
const redisCallTimeout = 5 * time.Second

// setupTimeout bounds how long subscribing waits for Redis to respond.
const setupTimeout = 10 * time.Second

// subscription consumes one stream for one handler. It runs four loops: the
// read loop takes new entries, the retry loop takes due retries and entries
// abandoned by crashed consumers, the ack loop acknowledges in batches, and
// the lease loop keeps the claim on messages whose handler runs long.
type subscription struct {
	cfg    Config
	client redis.UniversalClient
	log    *slog.Logger
	keys   handlerKeys

	ctx  context.Context
	out  chan *message.Message
	stop chan struct{} // closed when the subscription starts to close

	// slots holds one token per message handed out and not yet settled.
	slots chan struct{}

	ackMu      sync.RWMutex
	acks       chan ackRequest
	acksClosed bool

	flightMu sync.Mutex
	inFlight map[string]flight
	// acking holds the ids of settled messages whose acknowledgement is
	// queued or being retried, so that the sweep does not deliver them
	// again as abandoned.
	acking  map[string]struct{}
	settled sync.WaitGroup
	// wakeups receives the due times of retries parked here, so that the
	// retry loop need not wait for its next poll.
	wakeups chan time.Time

	// abandon is closed when the close timeout passes with messages still
	// unsettled; their watchers give up and leave them pending.
	abandon chan struct{}

	// failures throttles the log lines of failed calls, shared by every
	// subscription of the adapter.
	failures *logthrottle.Throttle
}

// flight is a message handed out and not yet settled.
type flight struct {
	since time.Time
	// retried is true for a message taken from the retry schedule, whose
	// claim is a lease in the schedule rather than the pending list.
	retried bool
}

type ackRequest struct {
	id      string
	retried bool
}

func newSubscription(s *Subscriber, ctx context.Context, keys handlerKeys) *subscription {
	cfg := s.adapter.cfg
	return &subscription{
		cfg:      cfg,
		client:   s.adapter.client,
		log:      cfg.Logger.With(slog.String(core.LogHandler, keys.group), slog.String(core.LogStream, keys.stream)),
		keys:     keys,
		ctx:      ctx,
		out:      make(chan *message.Message),
		stop:     make(chan struct{}),
		slots:    make(chan struct{}, cfg.MaxInFlight),
		acks:     make(chan ackRequest, cfg.MaxInFlight),
		inFlight: map[string]flight{},
		acking:   map[string]struct{}{},
		abandon:  make(chan struct{}),
		wakeups:  make(chan time.Time, 64),
		failures: &s.adapter.failures,
	}
}

// warn logs a failed call at warning level, at most once per
// logthrottle.Interval for each message across the adapter's
// subscriptions.
func (sub *subscription) warn(msg string, err error, attrs ...slog.Attr) {
	attrs = append(attrs, slog.String(core.LogError, err.Error()))
	sub.failures.Log(sub.log, slog.LevelWarn, msg, attrs...)
}

// run starts the loops and, once the subscription must stop, shuts them
// down in order: no new messages, then the handed-out ones settle,
// then the last acknowledgements are written.
func (sub *subscription) run(closing <-chan struct{}) {
	sub.probeReadCounter()
	sub.checkTrimmed()

	var producers, helpers sync.WaitGroup
	producers.Add(2)
	go func() { defer producers.Done(); sub.readLoop() }()
	go func() { defer producers.Done(); sub.retryLoop() }()
	helpers.Add(2)
	go func() { defer helpers.Done(); sub.ackLoop() }()
	go func() { defer helpers.Done(); sub.leaseLoop() }()

	select {
	case <-closing:
	case <-sub.ctx.Done():
	}
	close(sub.stop)
	producers.Wait()

	// A last check reports what the trim removed since the last sweep,
	// which would otherwise wait for the next start of the handler. It runs
	// while the handed-out messages settle, so that it adds no wait.
	checked := make(chan struct{})
	go func() { defer close(checked); sub.checkTrimmed() }()
	sub.waitSettled()

	sub.ackMu.Lock()
	sub.acksClosed = true
	close(sub.acks)
	sub.ackMu.Unlock()
	helpers.Wait()
	<-checked
	close(sub.out)
}

func (sub *subscription) waitSettled() {
	done := make(chan struct{})
	go func() { sub.settled.Wait(); close(done) }()

	timer := time.NewTimer(sub.cfg.CloseTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		close(sub.abandon)
		<-done
		sub.log.Warn("close timed out with messages unacknowledged; they stay pending for redelivery",
			slog.Duration("timeout", sub.cfg.CloseTimeout))
	}
}

// acquire takes between one and max slots, blocking for the first. It
// returns 0 once the subscription stops.
func (sub *subscription) acquire(max int) int {
	select {
	case sub.slots <- struct{}{}:
	case <-sub.stop:
		return 0
	}
	n := 1
	for n < max {
		select {
		case sub.slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

func (sub *subscription) release(n int) {
	for range n {
		<-sub.slots
	}
}

// emit hands msg out and watches for its acknowledgement. The caller holds
// a slot for it, which emit releases once the message settles. It returns
// false when the subscription stopped first. The message is then handed
// back to the retry schedule, due at once and without counting this
// delivery.
func (sub *subscription) emit(msg *message.Message, id string, count int64, retried bool) bool {
	msg.Metadata.Set(core.MetadataDeliveryCount, strconv.FormatInt(count, 10))
	// A retried or replayed message keeps the source of its first delivery.
	if msg.Metadata.Get(core.MetadataSourceID) == "" {
		msg.Metadata.Set(core.MetadataSourceStream, sub.keys.stream)
		msg.Metadata.Set(core.MetadataSourceID, id)
	}
	// Each message has its own context, cancelled once it settles. It does
	// not end with the subscription's context, so that a shutdown lets
	// running handlers finish instead of failing them mid-attempt. Closing
	// waits for them up to Config.CloseTimeout.
	ctx, cancel := context.WithCancel(context.WithoutCancel(sub.ctx))
	msg.SetContext(ctx)

	// An entry held since its read keeps the read's time, because its idle
	// time in Redis counts from then.
	sub.flightMu.Lock()
	since := time.Now()
	if held, ok := sub.inFlight[id]; ok {
		since = held.since
	}
	sub.inFlight[id] = flight{since: since, retried: retried}
	sub.flightMu.Unlock()
	sub.settled.Add(1)

	select {
	case sub.out <- msg:
		go sub.watch(msg, id, retried, cancel)
		return true
	case <-sub.stop:
		cancel()
		sub.handBack(msg, id, count-1)
		sub.settle(id)
		return false
	}
}

func (sub *subscription) watch(msg *message.Message, id string, retried bool, cancel context.CancelFunc) {
	defer sub.settle(id)
	defer cancel()
	select {
	case <-msg.Acked():
		sub.flightMu.Lock()
		sub.acking[id] = struct{}{}
		sub.flightMu.Unlock()
		sub.ack(ackRequest{id: id, retried: retried})
	case <-msg.Nacked():
		sub.park(msg, id)
	case <-sub.abandon:
		count, _ := strconv.ParseInt(msg.Metadata.Get(core.MetadataDeliveryCount), 10, 64)
		sub.handBack(msg, id, count)
	}
}

func (sub *subscription) settle(id string) {
	sub.flightMu.Lock()
	delete(sub.inFlight, id)
	sub.flightMu.Unlock()
	sub.release(1)
	sub.settled.Done()
}

func (sub *subscription) ack(req ackRequest) {
	sub.ackMu.RLock()
	defer sub.ackMu.RUnlock()
	if !sub.acksClosed {
		sub.acks <- req
	}
}

// parkedMessage is the copy of a message kept while it waits for a retry.
type parkedMessage struct {
	UUID     string            `json:"uuid"`
	Payload  []byte            `json:"payload"`
	Metadata map[string]string `json:"metadata"`
}

// park schedules a nacked message's next delivery after the pause in its
// metadata. While Redis is unreachable it tries again after growing pauses,
// keeping the message's slot, until the close timeout of a closing
// subscription passes. The message then stays pending, and the sweep for
// abandoned entries of this or another process delivers it again after
// Config.ClaimIdle.
func (sub *subscription) park(msg *message.Message, id string) {
	pause, _ := time.ParseDuration(msg.Metadata.Get(core.MetadataRetryAfter))
	count, _ := strconv.ParseInt(msg.Metadata.Get(core.MetadataDeliveryCount), 10, 64)
	errorPause := minErrorPause
	for {
		err := sub.schedule(msg, id, pause, count, "keep")
		if err == nil {
			break
		}
		if errors.Is(err, errEncodeRetryCopy) {
			sub.log.Error("schedule retry failed; the entry stays pending and is claimed again later",
				slog.String("id", id), slog.String(core.LogError, err.Error()))
			return
		}
		sub.warn("schedule retry failed; retrying", err, slog.String("id", id))
		if !sub.pauseUntilAbandoned(errorPause) {
			sub.log.Warn("schedule retry failed at close; the entry stays pending and is claimed again later",
				slog.String("id", id), slog.String(core.LogError, err.Error()),
				slog.Duration("claim_idle", sub.cfg.ClaimIdle))
			return
		}
		errorPause = nextErrorPause(errorPause)
	}

	// The schedule runs on the server's clock, which read the time before
	// the script returned. A millisecond of slack covers the rounding of the
	// due time to whole milliseconds.
	select {
	case sub.wakeups <- time.Now().Add(pause + time.Millisecond):
	default:
	}
}

// pauseUntilAbandoned waits d, or returns false if the close timeout of a
// closing subscription passes first.
func (sub *subscription) pauseUntilAbandoned(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-sub.abandon:
		return false
	}
}

// handBack returns a message that was not handled to the retry schedule,
// due at once, so that another subscription of the handler takes it without
// waiting for Config.ClaimIdle. count is the number of deliveries that
// reached the handler. If that fails, the entry stays pending and is
// claimed again after Config.ClaimIdle.
func (sub *subscription) handBack(msg *message.Message, id string, count int64) {
	if err := sub.schedule(msg, id, 0, count, "set"); err != nil {
		sub.warn("hand back message failed; the entry stays pending and is claimed again later", err,
			slog.String("id", id), slog.Duration("claim_idle", sub.cfg.ClaimIdle))
	}
}

// errEncodeRetryCopy marks a message that cannot be copied for its retry.
var errEncodeRetryCopy = errors.New("encode message for retry")

// schedule stores a copy of msg and puts it in the retry schedule; see
// parkScript for mode. Running it again after a lost reply is harmless.
func (sub *subscription) schedule(msg *message.Message, id string, pause time.Duration, count int64,
	mode string) error {
	metadata := make(map[string]string, len(msg.Metadata))
	for key, value := range msg.Metadata {
		metadata[key] = value
	}
	delete(metadata, core.MetadataRetryAfter)
	delete(metadata, core.MetadataDeliveryCount)
	copyJSON, err := json.Marshal(parkedMessage{UUID: msg.UUID, Payload: msg.Payload, Metadata: metadata})
	if err != nil {
		return fmt.Errorf("%w %s: %w", errEncodeRetryCopy, id, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
	defer cancel()
	err = parkScript.Run(ctx, sub.client,
		[]string{sub.keys.stream, sub.keys.retries, sub.keys.state},
		sub.keys.group, parkingConsumer, id, pause.Milliseconds(), copyJSON, count, mode).Err()
	if err != nil {
		return fmt.Errorf("schedule retry of %s: %w", id, err)
	}
	return nil
}
