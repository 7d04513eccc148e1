package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/inspect"
)

// Monitor checks a DLQ at an interval and sends alerts to its sinks. Its
// methods are safe for concurrent use; checks run one at a time.
type Monitor struct {
	cfg   Config
	log   *slog.Logger
	sinks []*sinkState

	mu          sync.Mutex
	lastDropped int64
	checked     bool
}

// sinkState is the state one sink last received. Keeping it per sink means
// an unchanged state is not sent again and a failed send is retried at the
// next check.
type sinkState struct {
	sink     Sink
	minLevel Level
	sent     state
}

// state is the part of an alert whose change is worth a new alert.
type state struct {
	level        Level
	bucket       int
	nearCapacity bool
	dropped      int64
}

// New validates cfg, fills its defaults and returns a monitor that sends to
// the log and to cfg.Sinks.
func New(cfg Config) (*Monitor, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}

	m := &Monitor{cfg: cfg, log: cfg.Logger}
	sinks := append([]Sink{NewLogSink(cfg.Logger)}, cfg.Sinks...)
	for _, s := range sinks {
		minLevel := LevelWarning
		if f, ok := s.(LevelFilter); ok {
			minLevel = max(f.MinLevel(), LevelWarning)
		}
		m.sinks = append(m.sinks, &sinkState{sink: s, minLevel: minLevel})
	}
	return m, nil
}

// Run checks the DLQ at once and then every Interval until ctx is done. A
// failed check is logged and does not stop it. It returns nil when ctx is
// done.
func (m *Monitor) Run(ctx context.Context) error {
	m.log.LogAttrs(ctx, slog.LevelInfo, "dlq monitor started",
		slog.String(core.LogStream, m.cfg.Source), slog.Duration("interval", m.cfg.Interval))

	ticker := time.NewTicker(m.cfg.Interval)
	defer ticker.Stop()
	for {
		alert, err := m.Check(ctx)
		// A check that stopping interrupted is neither logged nor reported.
		interrupted := err != nil && ctx.Err() != nil
		if err != nil && !interrupted {
			m.log.LogAttrs(ctx, slog.LevelError, "dlq check failed",
				slog.String(core.LogStream, m.cfg.Source), slog.String(core.LogError, err.Error()))
		}
		if m.cfg.OnCheck != nil && !interrupted {
			m.cfg.OnCheck(alert, err)
		}
		select {
		case <-ctx.Done():
			m.log.LogAttrs(context.WithoutCancel(ctx), slog.LevelInfo, "dlq monitor stopped",
				slog.String(core.LogStream, m.cfg.Source))
			return nil
		case <-ticker.C:
		}
	}
}

// Check reads the DLQ once and sends the alerts that its state calls for.
// It returns the alert computed, also when no sink needed it. It returns an
// error only when the DLQ cannot be read; a failing sink is logged and
// tried again at the next check.
func (m *Monitor) Check(ctx context.Context) (Alert, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, m.cfg.CheckTimeout)
	defer cancel()

	summary, err := inspect.Summarize(ctx, m.cfg.DLQ, inspect.SummaryOptions{
		Window: m.cfg.Window, PageSize: m.cfg.PageSize,
	})
	if err != nil {
		return Alert{}, fmt.Errorf("check dlq %s: %w", m.cfg.Source, err)
	}

	alert := m.alert(summary)
	current := state{
		level:        alert.Level,
		bucket:       bucket(summary.Total),
		nearCapacity: alert.NearCapacity,
		dropped:      summary.Dropped,
	}
	for _, s := range m.sinks {
		m.deliver(ctx, s, alert, current)
	}
	return alert, nil
}

// alert builds the alert for a summary and records its dropped count.
func (m *Monitor) alert(s inspect.Summary) Alert {
	a := Alert{
		Source:            m.cfg.Source,
		DedupKey:          "deadletter/" + m.cfg.Source,
		Entries:           s.Total,
		WarningThreshold:  m.cfg.WarningThreshold,
		CriticalThreshold: m.cfg.CriticalThreshold,
		Capacity:          m.cfg.Capacity,
		Dropped:           s.Dropped,
		NewestEventTypes:  firstN(s.NewestEventTypes, m.cfg.TopN),
		TopHandlers:       firstN(s.ByHandler, m.cfg.TopN),
		Scanned:           s.Scanned,
		CheckedAt:         time.Now().UTC(),
	}
	for _, g := range firstN(s.Groups, m.cfg.TopN) {
		a.TopErrors = append(a.TopErrors, ErrorSummary{Key: g.Key, Handler: g.Handler, Error: g.Error, Count: g.Count})
	}

	// The first check has no earlier count to compare with, so drops from
	// before the monitor started count in Dropped only.
	if m.checked && s.Dropped > m.lastDropped {
		a.DroppedNew = s.Dropped - m.lastDropped
	}
	m.lastDropped, m.checked = s.Dropped, true

	if m.cfg.Capacity > 0 {
		a.NearCapacity = float64(s.Total) >= m.cfg.CapacityRatio*float64(m.cfg.Capacity)
	}
	a.Level = m.level(a)
	return a
}

func (m *Monitor) level(a Alert) Level {
	switch {
	case m.cfg.CriticalThreshold > 0 && a.Entries > int64(m.cfg.CriticalThreshold):
		return LevelCritical
	case m.cfg.WarningThreshold > 0 && a.Entries > int64(m.cfg.WarningThreshold),
		a.NearCapacity, a.DroppedNew > 0:
		return LevelWarning
	}
	return LevelOK
}

// deliver sends the alert to one sink if the sink's state calls for it.
// Levels under the sink's minimum are sent as LevelOK, so that a PagerDuty
// sink for critical alerts gets a resolve when the DLQ falls back to warning.
func (m *Monitor) deliver(ctx context.Context, s *sinkState, alert Alert, current state) {
	if current.level < s.minLevel {
		current.level = LevelOK
	}
	if !worthSending(s.sent, current) {
		// The highest bucket sent is kept, so that a count going down and
		// up again within a level alerts only past its peak.
		s.sent.nearCapacity = current.nearCapacity
		s.sent.dropped = current.dropped
		return
	}

	alert.Level = current.level
	alert.Resolved = current.level == LevelOK
	if err := send(ctx, s.sink, alert); err != nil {
		m.log.LogAttrs(ctx, slog.LevelError, "alert sink failed; trying again at the next check",
			slog.String("sink", s.sink.Name()), slog.String("level", alert.Level.String()),
			slog.String(core.LogError, err.Error()))
		return
	}
	s.sent = current
}

// worthSending reports whether a sink that last received sent must now
// receive current.
func worthSending(sent, current state) bool {
	switch {
	case current.level != sent.level:
		return true
	case current.level == LevelOK:
		return false
	}
	return current.bucket > sent.bucket ||
		(current.nearCapacity && !sent.nearCapacity) ||
		current.dropped > sent.dropped
}

// send calls the sink, turning a panic into an error so that a broken sink
// never stops the monitor.
func send(ctx context.Context, s Sink, a Alert) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("sink %s panicked: %v", s.Name(), v)
		}
	}()
	return s.Send(ctx, a)
}

// bucketSteps are the counts from which a larger DLQ is worth a new alert:
// 10, 20, 50, 100, 200, 500 and so on.
var bucketSteps = []int64{1, 2, 5}

// bucket returns the rank of n among 10, 20, 50, 100, 200, 500, ...: 0 up
// to 9 entries, 1 from 10, 2 from 20, 3 from 50.
func bucket(n int64) int {
	rank := 0
	for scale := int64(10); ; scale *= 10 {
		for _, step := range bucketSteps {
			if n < step*scale {
				return rank
			}
			rank++
		}
	}
}

func firstN[T any](items []T, n int) []T {
	if len(items) > n {
		return items[:n]
	}
	return items
}
