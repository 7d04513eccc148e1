package middleware_test

import (
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/middleware"
)

func TestRecoverer(t *testing.T) {
	t.Run("TurnsPanicIntoPanicError", func(t *testing.T) {
		h := middleware.Recoverer(func(*message.Message) ([]*message.Message, error) {
			panicInMailer()
			return nil, nil
		})

		produced, err := h(message.NewMessage("a", nil))
		require.Nil(t, produced)
		var panicErr *core.PanicError
		require.ErrorAs(t, err, &panicErr)
		require.Equal(t, "mailer template is nil", panicErr.Value)
		require.Contains(t, string(panicErr.Stack), "panicInMailer")
		require.Contains(t, err.Error(), "panic: mailer template is nil")
		require.Equal(t, core.ErrorTypePanic, core.Classify(err))
	})

	t.Run("PassesResultThrough", func(t *testing.T) {
		out := message.NewMessage("out", nil)
		h := middleware.Recoverer(func(*message.Message) ([]*message.Message, error) {
			return []*message.Message{out}, errMailServer
		})

		produced, err := h(message.NewMessage("a", nil))
		require.Equal(t, []*message.Message{out}, produced)
		require.ErrorIs(t, err, errMailServer)
	})

	t.Run("KeepsErrorValue", func(t *testing.T) {
		cause := errors.New("nil pointer in template")
		h := middleware.Recoverer(func(*message.Message) ([]*message.Message, error) {
			panic(cause)
		})

		_, err := h(message.NewMessage("a", nil))
		var panicErr *core.PanicError
		require.ErrorAs(t, err, &panicErr)
		require.Equal(t, cause, panicErr.Value)
	})

	t.Run("BoundsDeepStack", func(t *testing.T) {
		h := middleware.Recoverer(func(*message.Message) ([]*message.Message, error) {
			recursePanic(2000)
			return nil, nil
		})

		_, err := h(message.NewMessage("a", nil))
		var panicErr *core.PanicError
		require.ErrorAs(t, err, &panicErr)
		require.LessOrEqual(t, len(panicErr.Stack), middleware.MaxStackBytes+len("\n... stack truncated"))
		require.Contains(t, string(panicErr.Stack), "stack truncated")
	})
}

//go:noinline
func recursePanic(depth int) {
	if depth == 0 {
		panic("recursion too deep")
	}
	recursePanic(depth - 1)
}
