package core

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Defaults of Policy. A handler that always fails reaches the DLQ about
// 14 seconds after its first attempt: 2 s + 4 s + 8 s.
const (
	DefaultMaxRetries  = 3
	DefaultInitial     = 2 * time.Second
	DefaultMultiplier  = 2.0
	DefaultMaxInterval = time.Hour

	// MaxRetriesLimit bounds Policy.MaxRetries, far above any useful count,
	// so that the attempt arithmetic cannot overflow.
	MaxRetriesLimit = 1 << 20
)

// Policy sets how often and after which pauses a failing handler is retried
// before its event goes to the dead letter queue. The zero value is the
// default policy; a field left at 0 takes its default, and -1 turns off what
// the field controls where its doc says so.
type Policy struct {
	// MaxRetries is the number of retries after the first attempt. 0 means
	// DefaultMaxRetries (3); -1 means no retries, so the first failure is
	// dead-lettered.
	MaxRetries int

	// Initial is the pause before the first retry. 0 means DefaultInitial
	// (2 s).
	Initial time.Duration

	// Multiplier grows each pause from the one before. 0 means
	// DefaultMultiplier (2); 1 gives constant pauses.
	Multiplier float64

	// MaxInterval caps any single pause, including one asked for with
	// RetryAfter. 0 means DefaultMaxInterval (1 h); -1 means no cap.
	MaxInterval time.Duration

	// Jitter spreads each pause at random by up to this fraction either
	// way: 0.2 turns 4 s into 3.2 s to 4.8 s. 0 means no jitter (the
	// default); it must be below 1.
	Jitter float64

	// Timeout bounds one attempt of the handler: an attempt still running
	// after it fails with a timeout error, and its context is cancelled. A
	// handler that ignores its context keeps running in the background, so
	// it may overlap its own retry. 0 means no timeout (the default).
	Timeout time.Duration
}

// DefaultPolicy returns the policy with every default filled in: 3 retries
// after pauses of 2 s, 4 s and 8 s.
func DefaultPolicy() Policy {
	return Policy{}.WithDefaults()
}

// WithDefaults returns a copy of p with each zero field set to its default.
func (p Policy) WithDefaults() Policy {
	if p.MaxRetries == 0 {
		p.MaxRetries = DefaultMaxRetries
	}
	if p.Initial == 0 {
		p.Initial = DefaultInitial
	}
	if p.Multiplier == 0 {
		p.Multiplier = DefaultMultiplier
	}
	if p.MaxInterval == 0 {
		p.MaxInterval = DefaultMaxInterval
	}
	return p
}

// Validate reports the first field of p that has no meaning, as an error
// wrapping ErrInvalidPolicy. It accepts both filled and zero fields.
func (p Policy) Validate() error {
	switch {
	case p.MaxRetries < -1 || p.MaxRetries > MaxRetriesLimit:
		return fmt.Errorf("%w: MaxRetries is %d; use -1 for none, 0 for the default or a count up to %d",
			ErrInvalidPolicy, p.MaxRetries, MaxRetriesLimit)
	case p.Initial < 0:
		return fmt.Errorf("%w: Initial is %s; it must not be negative", ErrInvalidPolicy, p.Initial)
	case p.Multiplier != 0 && !(p.Multiplier >= 1 && p.Multiplier <= 1000):
		return fmt.Errorf("%w: Multiplier is %g; it must be from 1 to 1000", ErrInvalidPolicy, p.Multiplier)
	case p.MaxInterval < -1:
		return fmt.Errorf("%w: MaxInterval is %s; use -1 for no cap", ErrInvalidPolicy, p.MaxInterval)
	case !(p.Jitter >= 0 && p.Jitter < 1):
		return fmt.Errorf("%w: Jitter is %g; it must be at least 0 and below 1", ErrInvalidPolicy, p.Jitter)
	case p.Timeout < 0:
		return fmt.Errorf("%w: Timeout is %s; it must not be negative", ErrInvalidPolicy, p.Timeout)
	}
	return nil
}

// MaxAttempts returns how many times a handler runs for one event at most:
// the first attempt plus the retries.
func (p Policy) MaxAttempts() int {
	p = p.WithDefaults()
	if p.MaxRetries < 0 {
		return 1
	}
	return 1 + p.MaxRetries
}

// Pause returns how long to wait before the given retry, counted from 1.
// Retry n waits Initial × Multiplier^(n-1), capped by MaxInterval and then
// spread by Jitter.
func (p Policy) Pause(retry int) time.Duration {
	p = p.WithDefaults()
	if retry < 1 {
		retry = 1
	}

	pause := float64(p.Initial) * math.Pow(p.Multiplier, float64(retry-1))
	if p.MaxInterval > 0 && pause > float64(p.MaxInterval) {
		pause = float64(p.MaxInterval)
	}
	if pause > math.MaxInt64/2 {
		pause = math.MaxInt64 / 2
	}
	if p.Jitter > 0 {
		pause *= 1 + p.Jitter*(2*rand.Float64()-1)
	}
	return time.Duration(pause)
}

// Cap limits a pause that a handler asked for to MaxInterval.
func (p Policy) Cap(pause time.Duration) time.Duration {
	p = p.WithDefaults()
	if p.MaxInterval > 0 && pause > p.MaxInterval {
		return p.MaxInterval
	}
	if pause < 0 {
		return 0
	}
	return pause
}
