package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/adapters/memory"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/middleware"
)

// delivery returns a message as a redelivering subscriber emits it: with a
// delivery count and any retry state it stored.
func delivery(payload []byte, count int, metadata map[string]string) *message.Message {
	msg := message.NewMessage("message-"+strconv.Itoa(count), payload)
	for key, value := range metadata {
		msg.Metadata.Set(key, value)
	}
	msg.Metadata.Set(core.MetadataDeliveryCount, strconv.Itoa(count))
	return msg
}

func requireNacked(t *testing.T, msg *message.Message) {
	t.Helper()
	select {
	case <-msg.Nacked():
	default:
		require.FailNow(t, "message not nacked")
	}
}

func requireNotNacked(t *testing.T, msg *message.Message) {
	t.Helper()
	select {
	case <-msg.Nacked():
		require.FailNow(t, "message nacked")
	default:
	}
}

// handle runs h behind the fixture's Retry on msg and requires that the
// wrapped handler returned no error, which is how Retry hands a message back
// to a redelivering subscriber.
func (f *fixture) handle(t *testing.T, h message.HandlerFunc, msg *message.Message) {
	t.Helper()
	_, err := f.retry.Middleware(h)(msg)
	require.NoError(t, err)
}

func TestRetryRedelivery(t *testing.T) {
	policy := core.Policy{MaxRetries: 3, Initial: 10 * time.Millisecond, Multiplier: 2}

	t.Run("NacksWithPolicyPause", func(t *testing.T) {
		f := newFixture(t, policy)
		_, raw := newEvent(t)
		var c calls

		first := delivery(raw, 1, nil)
		f.handle(t, c.script(errMailServer), first)
		requireNacked(t, first)
		require.Equal(t, policy.Pause(1).String(), first.Metadata.Get(core.MetadataRetryAfter))
		require.Equal(t, errMailServer.Error(), first.Metadata.Get(core.MetadataLastError))
		require.Equal(t, string(core.ErrorTypeFailure), first.Metadata.Get(core.MetadataErrorType))
		firstFailedAt := first.Metadata.Get(core.MetadataFirstFailedAt)
		failedAt, err := time.Parse(time.RFC3339Nano, firstFailedAt)
		require.NoError(t, err)
		require.WithinDuration(t, time.Now(), failedAt, time.Minute)

		second := delivery(raw, 2, map[string]string{core.MetadataFirstFailedAt: firstFailedAt})
		f.handle(t, c.script(errMailServer, errMailServer), second)
		requireNacked(t, second)
		require.Equal(t, policy.Pause(2).String(), second.Metadata.Get(core.MetadataRetryAfter))
		require.Equal(t, firstFailedAt, second.Metadata.Get(core.MetadataFirstFailedAt))
		require.Empty(t, f.entries(t))

		scheduled := f.logs.records(t, "retry scheduled")
		require.Len(t, scheduled, 2)
		require.EqualValues(t, policy.Pause(2), scheduled[1][core.LogDelay])
		require.EqualValues(t, 2, scheduled[1][core.LogRetryAttempt])
	})

	t.Run("NacksWithCappedRetryAfter", func(t *testing.T) {
		f := newFixture(t, core.Policy{MaxInterval: 30 * time.Millisecond})
		_, raw := newEvent(t)
		var c calls

		msg := delivery(raw, 1, nil)
		f.handle(t, c.script(core.RetryAfter(errMailServer, time.Hour)), msg)
		requireNacked(t, msg)
		require.Equal(t, "30ms", msg.Metadata.Get(core.MetadataRetryAfter))
	})

	t.Run("SuccessIsNotNacked", func(t *testing.T) {
		f := newFixture(t, policy)
		ev, raw := newEvent(t)
		var seen core.Event

		msg := delivery(raw, 2, nil)
		f.handle(t, func(msg *message.Message) ([]*message.Message, error) {
			seen, _ = middleware.EventFromContext(msg.Context())
			return nil, nil
		}, msg)
		requireNotNacked(t, msg)
		require.Equal(t, ev.EventID, seen.EventID, "event missing from the handler's context")
		require.Len(t, f.logs.records(t, "handler succeeded"), 1)
	})

	t.Run("DeadLettersAtMaxAttempts", func(t *testing.T) {
		f := newFixture(t, policy)
		ev, raw := newEvent(t)
		var c calls
		firstFailedAt := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)

		msg := delivery(raw, policy.MaxAttempts(), map[string]string{
			core.MetadataFirstFailedAt: core.FormatTime(firstFailedAt),
			core.MetadataLastError:     "earlier failure",
			core.MetadataSourceStream:  "memory:patient.registered",
			core.MetadataSourceID:      "42",
			core.MetadataReplayCount:   "2",
		})
		f.handle(t, c.script(errMailServer), msg)
		requireNotNacked(t, msg)
		require.Equal(t, 1, c.count())

		entry := f.onlyEntry(t)
		requireEntryFields(t, entry, ev, raw)
		require.Equal(t, errMailServer.Error(), entry.Error)
		require.Equal(t, policy.MaxAttempts(), entry.Attempts)
		require.Equal(t, firstFailedAt, entry.FirstFailedAt)
		require.Equal(t, "memory:patient.registered", entry.SourceStream)
		require.Equal(t, "42", entry.SourceID)
		require.Equal(t, 2, entry.ReplayCount)
	})

	t.Run("PermanentDeadLettersAtOnce", func(t *testing.T) {
		f := newFixture(t, policy)
		_, raw := newEvent(t)
		var c calls

		msg := delivery(raw, 1, nil)
		f.handle(t, c.script(core.Permanent(errors.New("ward code is invalid"))), msg)
		requireNotNacked(t, msg)
		entry := f.onlyEntry(t)
		require.Equal(t, core.ErrorTypePermanent, entry.ErrorType)
		require.Equal(t, 1, entry.Attempts)
	})

	t.Run("PanicIsDeadLetteredAtOnce", func(t *testing.T) {
		f := newFixture(t, policy)
		_, raw := newEvent(t)
		panicking := func(*message.Message) ([]*message.Message, error) {
			panicInMailer()
			return nil, nil
		}

		msg := delivery(raw, 1, nil)
		f.handle(t, panicking, msg)
		requireNotNacked(t, msg)
		entry := f.onlyEntry(t)
		require.Equal(t, core.ErrorTypePanic, entry.ErrorType)
		require.Equal(t, 1, entry.Attempts)
		require.Contains(t, entry.Error, "panicInMailer")
	})

	t.Run("RedeliveryLimitSkipsHandler", func(t *testing.T) {
		f := newFixture(t, policy)
		ev, raw := newEvent(t)
		var c calls

		limit := policy.MaxAttempts() + middleware.DefaultCrashAllowance
		msg := delivery(raw, limit+1, map[string]string{
			core.MetadataLastError: "process killed while handling",
		})
		f.handle(t, c.script(), msg)
		require.Zero(t, c.count(), "handler called past the attempt limit and the crash allowance")
		requireNotNacked(t, msg)

		entry := f.onlyEntry(t)
		requireEntryFields(t, entry, ev, raw)
		require.Equal(t, core.ErrorTypeRedeliveryLimit, entry.ErrorType)
		require.Contains(t, entry.Error, core.ErrRedeliveryLimit.Error())
		require.Contains(t, entry.Error, "process killed while handling")
		require.Equal(t, limit+1, entry.Attempts)
	})

	t.Run("CrashAllowanceRunsHandlerAgain", func(t *testing.T) {
		f := newFixture(t, policy)
		_, raw := newEvent(t)
		var c calls

		// A delivery past the attempts, as after crashes of the process
		// while the event was in flight, still runs the handler once.
		msg := delivery(raw, policy.MaxAttempts()+1, nil)
		f.handle(t, c.script(errMailServer), msg)
		require.Equal(t, 1, c.count(), "an event within the crash allowance must reach the handler")
		requireNotNacked(t, msg)

		entry := f.onlyEntry(t)
		require.Equal(t, core.ErrorTypeFailure, entry.ErrorType, "its failure is dead-lettered as a failure")
		require.Equal(t, policy.MaxAttempts()+1, entry.Attempts)
	})

	t.Run("FailedDLQWriteMarksPending", func(t *testing.T) {
		f := newFixture(t, policy)
		f.dlq.failures.Store(1)
		ev, raw := newEvent(t)
		var c calls

		last := delivery(raw, policy.MaxAttempts(), nil)
		f.handle(t, c.script(errMailServer), last)
		requireNacked(t, last)
		require.Equal(t, strconv.Itoa(policy.MaxAttempts()), last.Metadata.Get(core.MetadataDeadLetterPending))
		require.Equal(t, "15ms", last.Metadata.Get(core.MetadataRetryAfter))
		require.Equal(t, errMailServer.Error(), last.Metadata.Get(core.MetadataLastError))
		require.Empty(t, f.entries(t))

		critical := f.logs.records(t, "dead letter write failed; event left unacknowledged")
		require.Len(t, critical, 1)
		require.Equal(t, "CRITICAL", critical[0][slog.LevelKey])
		require.Equal(t, errDLQDown.Error(), critical[0][core.LogError])
		require.Equal(t, ev.EventID, critical[0][core.LogEventID])

		// The subscriber hands the stored retry state to the next delivery,
		// which writes the entry without calling the handler again.
		next := delivery(raw, policy.MaxAttempts()+1, retryState(last))
		f.handle(t, c.script(errMailServer), next)
		requireNotNacked(t, next)
		require.Equal(t, 1, c.count(), "handler called again for a pending dead letter")

		entry := f.onlyEntry(t)
		requireEntryFields(t, entry, ev, raw)
		require.Equal(t, errMailServer.Error(), entry.Error)
		require.Equal(t, core.ErrorTypeFailure, entry.ErrorType)
		require.Equal(t, policy.MaxAttempts(), entry.Attempts)
		f.requireNoPayloadLogged(t)
	})

	t.Run("PendingStaysPendingWhileDLQDown", func(t *testing.T) {
		f := newFixture(t, policy)
		f.dlq.failures.Store(2)
		_, raw := newEvent(t)
		var c calls

		last := delivery(raw, policy.MaxAttempts(), nil)
		f.handle(t, c.script(core.Permanent(errors.New("ward code is invalid"))), last)
		requireNacked(t, last)

		next := delivery(raw, policy.MaxAttempts()+1, retryState(last))
		f.handle(t, c.script(), next)
		requireNacked(t, next)
		require.Equal(t, last.Metadata.Get(core.MetadataDeadLetterPending),
			next.Metadata.Get(core.MetadataDeadLetterPending))

		third := delivery(raw, policy.MaxAttempts()+2, retryState(next))
		f.handle(t, c.script(), third)
		requireNotNacked(t, third)
		require.Equal(t, 1, c.count())
		entry := f.onlyEntry(t)
		require.Equal(t, core.ErrorTypePermanent, entry.ErrorType)
		require.Equal(t, "ward code is invalid", entry.Error)
	})

	t.Run("UndecodablePayloadIsDeadLetteredRaw", func(t *testing.T) {
		f := newFixture(t, policy)
		raw := []byte("not an event \x00\xff " + payloadMarker)
		var c calls

		msg := delivery(raw, 1, nil)
		f.handle(t, c.script(), msg)
		require.Zero(t, c.count())
		requireNotNacked(t, msg)

		entry := f.onlyEntry(t)
		require.Equal(t, raw, entry.EventData)
		require.Equal(t, core.ErrorTypeDecode, entry.ErrorType)
		require.Equal(t, handlerName, entry.Handler)
		require.Equal(t, 1, entry.Attempts)
		f.requireNoPayloadLogged(t)
	})

	t.Run("UndecodableStaysPendingWhileDLQDown", func(t *testing.T) {
		f := newFixture(t, policy)
		f.dlq.failures.Store(1)
		raw := []byte("not an event")
		var c calls

		first := delivery(raw, 1, nil)
		f.handle(t, c.script(), first)
		requireNacked(t, first)
		require.Equal(t, "1", first.Metadata.Get(core.MetadataDeadLetterPending))
		require.Equal(t, string(core.ErrorTypeDecode), first.Metadata.Get(core.MetadataErrorType))

		next := delivery(raw, 2, retryState(first))
		f.handle(t, c.script(), next)
		requireNotNacked(t, next)
		require.Zero(t, c.count())
		entry := f.onlyEntry(t)
		require.Equal(t, raw, entry.EventData)
		require.Equal(t, core.ErrorTypeDecode, entry.ErrorType)
		require.Equal(t, 1, entry.Attempts)
	})

	t.Run("SkipIsNotNacked", func(t *testing.T) {
		f := newFixture(t, policy)
		_, raw := newEvent(t)
		var c calls

		msg := delivery(raw, 2, nil)
		f.handle(t, c.script(core.Skip(errors.New("welcome email already sent"))), msg)
		requireNotNacked(t, msg)
		require.Empty(t, msg.Metadata.Get(core.MetadataRetryAfter))
		require.Empty(t, f.entries(t))
		require.Len(t, f.logs.records(t, "handler skipped event"), 1)
	})

	t.Run("SubscriberDecodeErrorIsDeadLettered", func(t *testing.T) {
		f := newFixture(t, policy)
		_, raw := newEvent(t)
		var c calls

		msg := delivery(raw, 1, map[string]string{core.MetadataDecodeError: "stream entry has no payload field"})
		f.handle(t, c.script(), msg)
		require.Zero(t, c.count())

		entry := f.onlyEntry(t)
		require.Equal(t, raw, entry.EventData)
		require.Equal(t, core.ErrorTypeDecode, entry.ErrorType)
		require.Contains(t, entry.Error, "stream entry has no payload field")
	})

	t.Run("LongSubscriberDecodeErrorIsCut", func(t *testing.T) {
		f := newFixture(t, policy)
		_, raw := newEvent(t)
		var c calls

		reason := "header is invalid: " + strings.Repeat("é", 100<<10)
		msg := delivery(raw, 1, map[string]string{core.MetadataDecodeError: reason})
		f.handle(t, c.script(), msg)
		require.Zero(t, c.count())

		entry := f.onlyEntry(t)
		require.Equal(t, core.ErrorTypeDecode, entry.ErrorType)
		require.Contains(t, entry.Error, "header is invalid: é")
		require.Contains(t, entry.Error, fmt.Sprintf("... (cut at 511 of %d bytes)", len(reason)))
		require.Less(t, len(entry.Error), 600, "the entry's error must stay short")
		require.True(t, utf8.ValidString(entry.Error), "the cut must fall between characters")
	})
}

// retryState returns the retry state keys of a nacked message, as a
// subscriber with Capabilities.RetryState stores them.
func retryState(msg *message.Message) map[string]string {
	state := map[string]string{}
	for _, key := range []string{
		core.MetadataLastError, core.MetadataErrorType,
		core.MetadataFirstFailedAt, core.MetadataDeadLetterPending,
	} {
		if value, ok := msg.Metadata[key]; ok {
			state[key] = value
		}
	}
	return state
}

// runOnMemory runs h behind the fixture's Retry in a router on an in-memory
// adapter, which redelivers nacked messages, and stops it at cleanup.
func (f *fixture) runOnMemory(t *testing.T, h message.HandlerFunc) *memory.Adapter {
	t.Helper()
	adapter, err := memory.New(memory.Config{})
	require.NoError(t, err)
	sub, err := adapter.Subscriber(handlerName)
	require.NoError(t, err)

	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	require.NoError(t, err)
	router.AddConsumerHandler(handlerName, topic, sub, func(msg *message.Message) error {
		_, err := h(msg)
		return err
	}).AddMiddleware(f.retry.Middleware)

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- router.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-stopped)
		require.NoError(t, adapter.Close())
	})
	select {
	case <-router.Running():
	case <-time.After(waitTimeout):
		require.FailNow(t, "router did not start")
	}
	return adapter
}

func publishEvent(t *testing.T, adapter *memory.Adapter, raw []byte, id string) {
	t.Helper()
	require.NoError(t, adapter.Publisher().Publish(topic, message.NewMessage(id, raw)))
}

func (f *fixture) waitForEntries(t *testing.T, n int) []core.Entry {
	t.Helper()
	require.Eventually(t, func() bool {
		size, err := f.dlq.Len(context.Background())
		return err == nil && size >= int64(n)
	}, waitTimeout, 5*time.Millisecond, "dlq entries")
	return f.entries(t)
}

func TestRetryOnMemoryAdapter(t *testing.T) {
	policy := core.Policy{MaxRetries: 2, Initial: 10 * time.Millisecond, Multiplier: 2}

	t.Run("DeadLettersAfterRedeliveries", func(t *testing.T) {
		f := newFixture(t, policy)
		ev, raw := newEvent(t)
		var (
			c      calls
			mu     sync.Mutex
			counts []string
		)
		adapter := f.runOnMemory(t, func(msg *message.Message) ([]*message.Message, error) {
			mu.Lock()
			counts = append(counts, msg.Metadata.Get(core.MetadataDeliveryCount))
			mu.Unlock()
			c.record()
			return nil, errMailServer
		})
		publishEvent(t, adapter, raw, ev.EventID)

		entry := f.waitForEntries(t, 1)[0]
		requireEntryFields(t, entry, ev, raw)
		require.Equal(t, 3, entry.Attempts)
		require.Equal(t, "memory:patient.registered", entry.SourceStream)
		require.Equal(t, "1", entry.SourceID)
		require.False(t, entry.FirstFailedAt.IsZero())

		mu.Lock()
		require.Equal(t, []string{"1", "2", "3"}, counts)
		mu.Unlock()
		for i, gap := range c.gaps() {
			require.GreaterOrEqual(t, gap, policy.Pause(i+1), "pause before retry %d", i+1)
		}
	})

	t.Run("RetryPauseDoesNotBlockOtherEvents", func(t *testing.T) {
		f := newFixture(t, core.Policy{Initial: time.Hour})
		slowEvent, slowRaw := newEvent(t)
		fastEvent, fastRaw := newEvent(t)
		handled := make(chan string, 4)

		adapter := f.runOnMemory(t, func(msg *message.Message) ([]*message.Message, error) {
			ev, _ := middleware.EventFromContext(msg.Context())
			handled <- ev.EventID
			if ev.EventID == slowEvent.EventID {
				return nil, errMailServer
			}
			return nil, nil
		})
		publishEvent(t, adapter, slowRaw, slowEvent.EventID)
		require.Equal(t, slowEvent.EventID, receiveID(t, handled))
		publishEvent(t, adapter, fastRaw, fastEvent.EventID)
		require.Equal(t, fastEvent.EventID, receiveID(t, handled))
	})

	t.Run("FailedDLQWriteIsRetriedWithoutHandler", func(t *testing.T) {
		f := newFixture(t, policy)
		f.dlq.failures.Store(1)
		ev, raw := newEvent(t)
		var c calls

		adapter := f.runOnMemory(t, c.script(repeat(errMailServer, 10)...))
		publishEvent(t, adapter, raw, ev.EventID)

		entry := f.waitForEntries(t, 1)[0]
		require.Equal(t, policy.MaxAttempts(), c.count(), "handler calls")
		require.Equal(t, policy.MaxAttempts(), entry.Attempts)
		require.EqualValues(t, 2, f.dlq.adds.Load(), "dlq writes: one failed, one stored")
		require.Equal(t, errMailServer.Error(), entry.Error)
	})
}

func receiveID(t *testing.T, ids <-chan string) string {
	t.Helper()
	select {
	case id := <-ids:
		return id
	case <-time.After(waitTimeout):
		require.FailNow(t, "handler not called")
		return ""
	}
}
