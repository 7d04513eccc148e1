package middleware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/deadletter/deadletter/core"
)

// DefaultDLQRetryPause is how long a message waits before it is delivered
// again after its DLQ write failed.
const DefaultDLQRetryPause = 5 * time.Second

// DefaultCrashAllowance is how many deliveries past the policy's attempts an
// event may have, none of them ended by the handler, before it is taken for
// an event that crashes the process.
const DefaultCrashAllowance = 2

// EntryWriter stores dead letter entries. core.DLQ satisfies it.
type EntryWriter interface {
	Add(ctx context.Context, e core.Entry) (string, error)
}

// RetryConfig configures Retry for one handler.
type RetryConfig struct {
	// Handler names the handler in logs and dead letter entries. Required.
	Handler string

	// Policy sets the retries and their pauses. The zero value is the
	// default policy: 3 retries after 2 s, 4 s and 8 s.
	Policy core.Policy

	// DLQ receives the events that still fail. Required.
	DLQ EntryWriter

	// DLQRetryPause is the pause before a message whose DLQ write failed is
	// delivered again. 0 means DefaultDLQRetryPause (5 s).
	DLQRetryPause time.Duration

	// CrashAllowance is how many deliveries past the policy's attempts an
	// event may have before it is dead-lettered with error type
	// redelivery_limit, without running the handler. A delivery cut off by
	// a crash counts as an attempt, so events that were merely in flight
	// when a process was killed would otherwise use up their attempts.
	// 0 means DefaultCrashAllowance (2); -1 means none.
	CrashAllowance int

	// Logger receives the structured log lines. nil means slog.Default().
	Logger *slog.Logger
}

// Retry is middleware that retries a failing handler by its policy and
// dead-letters the event when the retries are spent, the error is permanent,
// the handler panics on the last attempt, or the message is not an event.
type Retry struct {
	handler       string
	policy        core.Policy
	dlq           EntryWriter
	dlqRetryPause time.Duration
	// redeliveryLimit is the delivery count past which an event is taken
	// for one that crashes the process.
	redeliveryLimit int
	log             *slog.Logger

	// dlqFailures throttles the log line of a failed DLQ write.
	dlqFailures *throttle
}

// NewRetry validates cfg, fills its defaults and returns the middleware.
func NewRetry(cfg RetryConfig) (*Retry, error) {
	if cfg.Handler == "" {
		return nil, fmt.Errorf("%w: retry middleware: Handler is missing", core.ErrInvalidConfig)
	}
	if cfg.DLQ == nil {
		return nil, fmt.Errorf("%w: retry middleware for handler %q: DLQ is missing",
			core.ErrInvalidConfig, cfg.Handler)
	}
	if err := cfg.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("retry middleware for handler %q: %w", cfg.Handler, err)
	}
	if cfg.DLQRetryPause < 0 {
		return nil, fmt.Errorf("%w: retry middleware for handler %q: DLQRetryPause is negative",
			core.ErrInvalidConfig, cfg.Handler)
	}
	if cfg.DLQRetryPause == 0 {
		cfg.DLQRetryPause = DefaultDLQRetryPause
	}
	switch {
	case cfg.CrashAllowance < -1:
		return nil, fmt.Errorf("%w: retry middleware for handler %q: CrashAllowance is %d; use -1, 0 or a count",
			core.ErrInvalidConfig, cfg.Handler, cfg.CrashAllowance)
	case cfg.CrashAllowance == 0:
		cfg.CrashAllowance = DefaultCrashAllowance
	case cfg.CrashAllowance == -1:
		cfg.CrashAllowance = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}

	return &Retry{
		handler:         cfg.Handler,
		policy:          cfg.Policy.WithDefaults(),
		dlq:             cfg.DLQ,
		dlqRetryPause:   cfg.DLQRetryPause,
		redeliveryLimit: cfg.Policy.MaxAttempts() + cfg.CrashAllowance,
		log:             cfg.Logger,
		dlqFailures:     &throttle{},
	}, nil
}

// Policy returns the policy in force, with its defaults filled in.
func (r *Retry) Policy() core.Policy { return r.policy }

// Middleware wraps h. Add it to one handler with Handler.AddMiddleware, or
// to a router whose handlers all share the config.
//
// The wrapped handler acknowledges the message itself only by returning
// nil. To schedule a retry it nacks the message and returns nil, so that
// the router does not log each scheduled retry as a handler error.
func (r *Retry) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		a := r.newAttempt(msg)

		if decodeErr := a.decode(); decodeErr != nil {
			return nil, r.giveUp(a, decodeErr)
		}
		if a.redelivered {
			return r.handleRedelivered(a, h)
		}
		return r.handleInPlace(a, h)
	}
}

// handleRedelivered runs one attempt and leaves the pause before the next
// one to the subscriber.
func (r *Retry) handleRedelivered(a *attempt, h message.HandlerFunc) ([]*message.Message, error) {
	if pending := a.msg.Metadata.Get(core.MetadataDeadLetterPending); pending != "" {
		a.number, _ = strconv.Atoi(pending)
		a.errorType = core.ErrorType(a.msg.Metadata.Get(core.MetadataErrorType))
		return nil, r.deadLetterOrNack(a, errors.New(a.msg.Metadata.Get(core.MetadataLastError)))
	}
	if a.number > r.redeliveryLimit {
		return nil, r.deadLetterOrNack(a, r.redeliveryLimitError(a))
	}

	produced, err := r.run(a, h)
	if r.skipped(a, err) {
		return produced, nil
	}

	r.logFailedAttempt(a, err)
	if r.givesUp(a, err) {
		return nil, r.deadLetterOrNack(a, err)
	}
	r.scheduleRetry(a, err, r.pauseAfter(a, err))
	return nil, nil
}

// handleInPlace retries within the call, sleeping between attempts, for
// subscribers that cannot deliver a message again later.
func (r *Retry) handleInPlace(a *attempt, h message.HandlerFunc) ([]*message.Message, error) {
	for ; ; a.number++ {
		produced, err := r.run(a, h)
		if r.skipped(a, err) {
			return produced, nil
		}

		r.logFailedAttempt(a, err)
		if r.givesUp(a, err) {
			return nil, r.deadLetter(a, err)
		}

		pause := r.pauseAfter(a, err)
		r.logRetry(a, pause)
		if waitErr := sleep(a.msg.Context(), pause); waitErr != nil {
			return nil, fmt.Errorf("wait to retry handler %q: %w", r.handler, waitErr)
		}
	}
}

// run calls the handler once, turning a panic into an error and enforcing
// the policy's timeout.
func (r *Retry) run(a *attempt, h message.HandlerFunc) ([]*message.Message, error) {
	a.msg.SetContext(withEvent(a.msg.Context(), a.event))
	if r.policy.Timeout <= 0 {
		return callRecovering(h, a.msg)
	}
	return runWithTimeout(h, a.msg, r.policy.Timeout, r.handler)
}

// giveUp dead-letters the event in the way the delivery mode allows: with
// redelivery a failed write nacks the message, and in place it returns the
// write's error so that the router nacks it.
func (r *Retry) giveUp(a *attempt, cause error) error {
	if a.redelivered {
		// A pending dead letter keeps the attempt count of the delivery
		// whose DLQ write failed, not the later delivery's count.
		if pending, err := strconv.Atoi(a.msg.Metadata.Get(core.MetadataDeadLetterPending)); err == nil {
			a.number = pending
		}
		return r.deadLetterOrNack(a, cause)
	}
	return r.deadLetter(a, cause)
}

// skipped reports whether the attempt ends without a retry because err is
// nil or marked with core.Skip, and logs the success or the skip if so.
func (r *Retry) skipped(a *attempt, err error) bool {
	if err == nil {
		r.log.LogAttrs(a.msg.Context(), slog.LevelDebug, "handler succeeded", a.attrs()...)
		return true
	}
	var skip *core.SkipError
	if !errors.As(err, &skip) {
		return false
	}
	r.log.LogAttrs(a.msg.Context(), slog.LevelInfo, "handler skipped event",
		append(a.attrs(), slog.String(core.LogError, err.Error()))...)
	return true
}

// givesUp reports whether a failed attempt is the last one: the retries are
// spent, the error is permanent, or the handler panicked. A panic points to
// a bug that a retry would hit again, so it is dead-lettered at once.
func (r *Retry) givesUp(a *attempt, err error) bool {
	var (
		permanent *core.PermanentError
		panicked  *core.PanicError
	)
	return errors.As(err, &permanent) || errors.As(err, &panicked) || a.number >= r.policy.MaxAttempts()
}

// pauseAfter returns the pause before the retry that follows attempt a.
func (r *Retry) pauseAfter(a *attempt, err error) time.Duration {
	var retryAfter *core.RetryAfterError
	if errors.As(err, &retryAfter) {
		return r.policy.Cap(retryAfter.After)
	}
	return r.policy.Pause(a.number)
}

// scheduleRetry records the failed attempt on the message and nacks it, so
// that the subscriber delivers it again after pause.
func (r *Retry) scheduleRetry(a *attempt, err error, pause time.Duration) {
	a.recordFailure(err)
	a.msg.Metadata.Set(core.MetadataRetryAfter, pause.String())
	r.logRetry(a, pause)
	a.msg.Nack()
}

func (r *Retry) redeliveryLimitError(a *attempt) error {
	err := fmt.Errorf("%w: delivered %d times, more than the %d attempts allowed and %d more for crashes, "+
		"without a handler result", core.ErrRedeliveryLimit, a.number, r.policy.MaxAttempts(),
		r.redeliveryLimit-r.policy.MaxAttempts())
	if last := a.msg.Metadata.Get(core.MetadataLastError); last != "" {
		err = fmt.Errorf("%w; last recorded error: %s", err, last)
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
