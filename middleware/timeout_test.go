package middleware

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/core"
)

// timedHandler names the handler in the errors under test.
const timedHandler = "index_patient"

func TestAttemptOutcome(t *testing.T) {
	const timeout = 50 * time.Millisecond
	errQuery := errors.New("query failed")
	produced := []*message.Message{message.NewMessage("1", nil)}

	t.Run("ResultOnTimeIsKept", func(t *testing.T) {
		got, err := attemptResult{produced: produced}.outcome(timeout, timedHandler)
		require.NoError(t, err)
		require.Equal(t, produced, got)

		_, err = attemptResult{err: errQuery}.outcome(timeout, timedHandler)
		require.Equal(t, errQuery, err, "an error returned on time must stay as it is")
	})
	t.Run("LateSuccessIsTimeout", func(t *testing.T) {
		got, err := attemptResult{produced: produced, late: true}.outcome(timeout, timedHandler)
		require.Nil(t, got)
		require.ErrorIs(t, err, core.ErrTimeout, "a handler that returned after its deadline must fail")
		require.Equal(t, core.ErrorTypeTimeout, core.Classify(err))
		require.Contains(t, err.Error(), timedHandler)
		require.Contains(t, err.Error(), timeout.String())
	})
	t.Run("LateErrorIsTimeout", func(t *testing.T) {
		_, err := attemptResult{err: context.DeadlineExceeded, late: true}.outcome(timeout, timedHandler)
		require.ErrorIs(t, err, core.ErrTimeout)
		require.ErrorIs(t, err, context.DeadlineExceeded, "the handler's own error must stay wrapped")
		require.Contains(t, err.Error(), timeout.String())

		_, err = attemptResult{err: errQuery, late: true}.outcome(timeout, timedHandler)
		require.ErrorIs(t, err, core.ErrTimeout)
		require.ErrorIs(t, err, errQuery)
	})
}

func TestRunWithTimeout(t *testing.T) {
	t.Run("ReturnsResultOnTime", func(t *testing.T) {
		msg := message.NewMessage("1", nil)
		_, err := runWithTimeout(func(*message.Message) ([]*message.Message, error) {
			return nil, nil
		}, msg, time.Minute, timedHandler)
		require.NoError(t, err)
	})
	t.Run("FailsHandlerIgnoringContext", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		msg := message.NewMessage("1", nil)
		_, err := runWithTimeout(func(*message.Message) ([]*message.Message, error) {
			<-release
			return nil, nil
		}, msg, 10*time.Millisecond, timedHandler)
		require.ErrorIs(t, err, core.ErrTimeout)
		require.Contains(t, err.Error(), "still running")
	})
	t.Run("FailsHandlerHonouringContext", func(t *testing.T) {
		msg := message.NewMessage("1", nil)
		_, err := runWithTimeout(func(m *message.Message) ([]*message.Message, error) {
			<-m.Context().Done()
			return nil, m.Context().Err()
		}, msg, 10*time.Millisecond, timedHandler)
		require.ErrorIs(t, err, core.ErrTimeout)
	})
}
