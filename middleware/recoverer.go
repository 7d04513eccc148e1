package middleware

import (
	"runtime/debug"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/deadletter/deadletter/core"
)

// MaxStackBytes bounds the stack kept from a panic, so that a deep recursion
// cannot bloat a dead letter entry.
const MaxStackBytes = 8 << 10

// Recoverer turns a panic in the handler into a *core.PanicError returned
// as the handler's error, with the panic value and a bounded stack. Retry
// recovers panics itself; Recoverer is for handlers without it.
func Recoverer(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		return callRecovering(h, msg)
	}
}

// callRecovering calls h and converts a panic into an error.
func callRecovering(h message.HandlerFunc, msg *message.Message) (produced []*message.Message, err error) {
	defer func() {
		if value := recover(); value != nil {
			produced = nil
			err = &core.PanicError{Value: value, Stack: boundedStack()}
		}
	}()
	return h(msg)
}

func boundedStack() []byte {
	stack := debug.Stack()
	if len(stack) > MaxStackBytes {
		stack = append(stack[:MaxStackBytes:MaxStackBytes], "\n... stack truncated"...)
	}
	return stack
}
