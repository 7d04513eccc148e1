package memory

import (
	"fmt"
	"time"

	"github.com/deadletter/deadletter/core"
)

// Defaults of Config.
const (
	// DefaultStreamMaxLen is the number of events kept per topic.
	DefaultStreamMaxLen = 10_000

	// DefaultDLQMaxLen is the number of entries the DLQ keeps before it
	// drops the oldest.
	DefaultDLQMaxLen = 5_000

	// DefaultCloseTimeout is how long closing a subscriber waits for
	// running handlers.
	DefaultCloseTimeout = 30 * time.Second
)

// Config configures an Adapter. The zero value is ready to use.
type Config struct {
	// StreamMaxLen caps the events kept per topic. Once a topic holds more,
	// its oldest events are removed, also for handlers that have not read
	// them yet, as a capped Redis stream does. Events already delivered and
	// waiting for a retry are kept. 0 means DefaultStreamMaxLen (10,000);
	// -1 means no cap.
	StreamMaxLen int

	// DLQMaxLen caps the entries of the DLQ, and separately those of its
	// replayed store. Entries removed from the DLQ at the cap are counted
	// by DLQ.Dropped. 0 means DefaultDLQMaxLen (5,000); -1 means no cap.
	DLQMaxLen int

	// CloseTimeout is how long closing a subscriber waits for the handlers
	// that are running to settle their messages. A message still unsettled
	// then is handed back to the handler's other subscribers. 0 means
	// DefaultCloseTimeout (30 s).
	CloseTimeout time.Duration
}

// Validate reports the first field of c that has no meaning, as an error
// wrapping core.ErrInvalidConfig.
func (c Config) Validate() error {
	switch {
	case c.StreamMaxLen < -1:
		return fmt.Errorf("%w: memory adapter: StreamMaxLen is %d; use -1 for no cap, 0 for the default or a positive count",
			core.ErrInvalidConfig, c.StreamMaxLen)
	case c.DLQMaxLen < -1:
		return fmt.Errorf("%w: memory adapter: DLQMaxLen is %d; use -1 for no cap, 0 for the default or a positive count",
			core.ErrInvalidConfig, c.DLQMaxLen)
	case c.CloseTimeout < 0:
		return fmt.Errorf("%w: memory adapter: CloseTimeout is %s; use 0 for the default or a positive duration",
			core.ErrInvalidConfig, c.CloseTimeout)
	}
	return nil
}

// withDefaults returns a copy of c with each zero field set to its default
// and each -1 turned into 0, which the adapter reads as no cap.
func (c Config) withDefaults() Config {
	c.StreamMaxLen = capOrDefault(c.StreamMaxLen, DefaultStreamMaxLen)
	c.DLQMaxLen = capOrDefault(c.DLQMaxLen, DefaultDLQMaxLen)
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	return c
}

func capOrDefault(value, def int) int {
	switch value {
	case 0:
		return def
	case -1:
		return 0
	}
	return value
}
