package middleware

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/deadletter/deadletter/core"
)

// runWithTimeout gives the handler a copy of the message whose context ends
// after timeout. A handler that ignores its context keeps running in the
// background, but its attempt counts as failed at the deadline.
//
// TODO: bound the calls left running at their timeout. A handler that
// ignores its context keeps one goroutine per timed-out attempt, beyond the
// subscriber's MaxInFlight, until it returns.
func runWithTimeout(h message.HandlerFunc, msg *message.Message, timeout time.Duration,
	handler string) ([]*message.Message, error) {
	ctx, cancel := context.WithTimeout(msg.Context(), timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()

	attemptMsg := msg.Copy()
	attemptMsg.SetContext(ctx)

	done := make(chan attemptResult, 1)
	go func() {
		produced, err := callRecovering(h, attemptMsg)
		done <- attemptResult{produced: produced, err: err, late: !time.Now().Before(deadline)}
	}()

	select {
	case res := <-done:
		return res.outcome(timeout, handler)
	case <-ctx.Done():
		if msg.Context().Err() != nil {
			return nil, msg.Context().Err()
		}
		return nil, fmt.Errorf("%w: handler %q still running after %s", core.ErrTimeout, handler, timeout)
	}
}

// attemptResult is the return values of a handler run under a timeout.
type attemptResult struct {
	produced []*message.Message
	err      error
	// late is true when the handler returned at or after the deadline.
	late bool
}

// outcome returns the handler's result, or a timeout error wrapping it when
// the handler returned late. The time of the handler's return decides, not
// the time runWithTimeout receives the result. On a starved machine
// runWithTimeout can wake after both the deadline and the handler's return,
// and the attempt must fail then as it does when runWithTimeout wakes at
// the deadline.
func (r attemptResult) outcome(timeout time.Duration, handler string) ([]*message.Message, error) {
	switch {
	case !r.late:
		return r.produced, r.err
	case r.err != nil:
		return nil, fmt.Errorf("%w after %s: %w", core.ErrTimeout, timeout, r.err)
	default:
		return nil, fmt.Errorf("%w: handler %q returned after more than %s", core.ErrTimeout, handler, timeout)
	}
}
