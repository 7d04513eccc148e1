package core

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Errors returned by deadletter wrap one of these, with
// detail added after it, so that errors.Is keeps working.
var (
	// ErrInvalidEvent marks an event that fails validation.
	ErrInvalidEvent = errors.New("invalid event")

	// ErrDecode marks a message that cannot be decoded into an event.
	ErrDecode = errors.New("decode event")

	// ErrInvalidPolicy marks a retry policy with a meaningless field.
	ErrInvalidPolicy = errors.New("invalid retry policy")

	// ErrInvalidConfig marks a configuration that cannot be used.
	ErrInvalidConfig = errors.New("invalid configuration")

	// ErrNotSupported marks an operation that an adapter cannot perform.
	// Adapters declare such gaps in their Capabilities.
	ErrNotSupported = errors.New("not supported by this adapter")

	// ErrEntryNotFound marks a dead letter entry id that the DLQ does not
	// hold.
	ErrEntryNotFound = errors.New("dead letter entry not found")

	// ErrUnknownHandler marks a replay to a handler that has never
	// subscribed to the event's type on this broker, so nothing would
	// receive the event.
	ErrUnknownHandler = errors.New("handler has never subscribed to this event type")

	// ErrClosed marks a call on a closed bus, publisher or subscriber.
	ErrClosed = errors.New("closed")

	// ErrTimeout marks a handler attempt that ran past its policy's Timeout.
	ErrTimeout = errors.New("handler timed out")

	// ErrRedeliveryLimit marks an event whose broker delivery count passed
	// the policy's attempts without the handler ever returning, as when the
	// handler crashes the whole process.
	ErrRedeliveryLimit = errors.New("delivery count passed the attempt limit")
)

// ErrorType classifies why an event was dead-lettered. It is stored in the
// entry's error_type field.
type ErrorType string

// Error types recorded in dead letter entries.
const (
	// ErrorTypeFailure is a plain error returned by the handler.
	ErrorTypeFailure ErrorType = "failure"
	// ErrorTypePermanent is an error marked with Permanent.
	ErrorTypePermanent ErrorType = "permanent"
	// ErrorTypeTimeout is an attempt that ran past the policy's Timeout.
	ErrorTypeTimeout ErrorType = "timeout"
	// ErrorTypePanic is a handler that panicked.
	ErrorTypePanic ErrorType = "panic"
	// ErrorTypeDecode is a message that could not be decoded into an event.
	ErrorTypeDecode ErrorType = "decode"
	// ErrorTypeRedeliveryLimit is an event delivered more often than the
	// policy allows without a handler result, typically a process crash.
	ErrorTypeRedeliveryLimit ErrorType = "redelivery_limit"
	// ErrorTypeTrimmed is an event that the broker dropped from its stream,
	// as at the stream's length cap, while the event waited for a retry. The
	// entry keeps the last attempt's error and the attempts made so far.
	ErrorTypeTrimmed ErrorType = "trimmed"
)

// PermanentError wraps an error that retrying cannot fix, such as invalid
// data. The event goes to the DLQ after the first attempt.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as not worth retrying. It returns nil for a nil err.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// RetryAfterError wraps an error that names its own pause before the next
// retry, such as a rate-limited API's Retry-After. The retry count still
// applies, and the pause is capped by the policy's MaxInterval.
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter marks err as asking for the given pause before the next retry.
// It returns nil for a nil err.
func RetryAfter(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryAfterError{Err: err, After: after}
}

// SkipError wraps a reason for not handling an event that is not a failure,
// such as an event the handler has already seen. The event is acknowledged
// and logged at info level, without a retry or a DLQ entry.
type SkipError struct{ Err error }

func (e *SkipError) Error() string { return e.Err.Error() }
func (e *SkipError) Unwrap() error { return e.Err }

// Skip marks err as a reason to acknowledge the event without handling it.
// It returns nil for a nil err.
func Skip(err error) error {
	if err == nil {
		return nil
	}
	return &SkipError{Err: err}
}

// PanicError is a recovered handler panic with its stack. The retry
// middleware dead-letters it without retries, like a permanent error.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("panic: %v\n%s", e.Value, e.Stack)
}

// Classify returns the error type under which err is dead-lettered.
func Classify(err error) ErrorType {
	var (
		permanent *PermanentError
		panicErr  *PanicError
	)
	switch {
	case errors.As(err, &panicErr):
		return ErrorTypePanic
	case errors.Is(err, ErrDecode):
		return ErrorTypeDecode
	case errors.Is(err, ErrRedeliveryLimit):
		return ErrorTypeRedeliveryLimit
	case errors.As(err, &permanent):
		return ErrorTypePermanent
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return ErrorTypeTimeout
	}
	return ErrorTypeFailure
}
