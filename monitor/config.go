package monitor

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/inspect"
)

// Defaults of Config.
const (
	DefaultInterval          = 5 * time.Minute
	DefaultWarningThreshold  = 10
	DefaultCriticalThreshold = 50
	DefaultCapacity          = 5_000
	DefaultCapacityRatio     = 0.8
	DefaultTopN              = 5
	DefaultCheckTimeout      = 30 * time.Second
	DefaultSource            = "dlq"
)

// Config configures a Monitor.
type Config struct {
	// DLQ is the dead letter queue to watch. Required.
	DLQ core.DLQ

	// Source names the DLQ in alerts and in PagerDuty's dedup key, for
	// example "events:dlq". "" means DefaultSource ("dlq").
	Source string

	// Interval is the pause between checks in Run. 0 means DefaultInterval
	// (5 min).
	Interval time.Duration

	// WarningThreshold raises a warning when the DLQ holds more entries
	// than this. 0 means DefaultWarningThreshold (10); -1 turns warnings by
	// count off.
	WarningThreshold int

	// CriticalThreshold raises a critical alert when the DLQ holds more
	// entries than this. 0 means DefaultCriticalThreshold (50); -1 turns
	// critical alerts off.
	CriticalThreshold int

	// Capacity is the DLQ's size cap, past which the adapter drops its
	// oldest entries. 0 means DefaultCapacity (5,000, the Redis adapter's
	// default cap); -1 turns the capacity warning off.
	Capacity int64

	// CapacityRatio is the share of Capacity at which the monitor warns
	// that the DLQ nears its cap. 0 means DefaultCapacityRatio (0.8).
	CapacityRatio float64

	// Window is the number of newest entries counted by handler, event
	// type and error. 0 means inspect.DefaultWindow (1,000).
	Window int

	// PageSize is the number of entries read per call to DLQ.List. 0 means
	// inspect.DefaultPageSize (200).
	PageSize int

	// TopN is the number of event types, handlers and error groups an
	// alert names. 0 means DefaultTopN (5).
	TopN int

	// CheckTimeout bounds one check, sends included. 0 means
	// DefaultCheckTimeout (30 s).
	CheckTimeout time.Duration

	// Sinks receive alerts besides the log, which always does.
	Sinks []Sink

	// Logger receives the log sink's alerts and the monitor's own errors.
	// nil means slog.Default().
	Logger *slog.Logger

	// OnCheck, when set, is called by Run after each check with its alert,
	// or with the error of a check that could not read the DLQ.
	OnCheck func(Alert, error)
}

func (c Config) withDefaults() Config {
	if c.Source == "" {
		c.Source = DefaultSource
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.WarningThreshold == 0 {
		c.WarningThreshold = DefaultWarningThreshold
	}
	if c.CriticalThreshold == 0 {
		c.CriticalThreshold = DefaultCriticalThreshold
	}
	if c.Capacity == 0 {
		c.Capacity = DefaultCapacity
	}
	if c.CapacityRatio == 0 {
		c.CapacityRatio = DefaultCapacityRatio
	}
	if c.Window == 0 {
		c.Window = inspect.DefaultWindow
	}
	if c.PageSize == 0 {
		c.PageSize = inspect.DefaultPageSize
	}
	if c.TopN == 0 {
		c.TopN = DefaultTopN
	}
	if c.CheckTimeout == 0 {
		c.CheckTimeout = DefaultCheckTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports the first field of c, with defaults filled, that cannot
// be used, as an error wrapping core.ErrInvalidConfig.
func (c Config) Validate() error {
	switch {
	case c.DLQ == nil:
		return fmt.Errorf("%w: monitor: DLQ is missing", core.ErrInvalidConfig)
	case c.Interval < 0 || c.CheckTimeout < 0:
		return fmt.Errorf("%w: monitor: Interval and CheckTimeout must be positive", core.ErrInvalidConfig)
	case c.WarningThreshold < -1 || c.CriticalThreshold < -1:
		return fmt.Errorf("%w: monitor: thresholds must be positive, 0 or -1", core.ErrInvalidConfig)
	case c.WarningThreshold > 0 && c.CriticalThreshold > 0 && c.WarningThreshold >= c.CriticalThreshold:
		return fmt.Errorf("%w: monitor: WarningThreshold %d must be below CriticalThreshold %d",
			core.ErrInvalidConfig, c.WarningThreshold, c.CriticalThreshold)
	case c.Capacity < -1:
		return fmt.Errorf("%w: monitor: Capacity %d must be positive, 0 or -1", core.ErrInvalidConfig, c.Capacity)
	case c.CapacityRatio <= 0 || c.CapacityRatio > 1:
		return fmt.Errorf("%w: monitor: CapacityRatio %g must be above 0 and at most 1",
			core.ErrInvalidConfig, c.CapacityRatio)
	case c.Window < -1 || c.PageSize < 0 || c.TopN < 0:
		return fmt.Errorf("%w: monitor: Window, PageSize and TopN must not be negative", core.ErrInvalidConfig)
	}
	for i, s := range c.Sinks {
		if s == nil {
			return fmt.Errorf("%w: monitor: sink %d is nil", core.ErrInvalidConfig, i)
		}
	}
	return nil
}
