package metrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deadletter/deadletter/core"
)

// DefaultNamespace starts every metric name.
const DefaultNamespace = "deadletter"

// DefaultDurationBuckets are the histogram buckets of handler and publish
// durations, in seconds: from 1 ms, where a publish on loopback lands, to
// 60 s, past which a handler is usually stuck.
var DefaultDurationBuckets = []float64{
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
}

// Config configures Metrics.
type Config struct {
	// Registerer receives the metrics. nil means
	// prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer

	// Namespace starts every metric name. "" means DefaultNamespace
	// ("deadletter").
	Namespace string

	// DurationBuckets are the histogram buckets in seconds. nil means
	// DefaultDurationBuckets.
	DurationBuckets []float64
}

// Metrics holds the handler and publish metrics of one application.
type Metrics struct {
	attempts        *prometheus.CounterVec
	retries         *prometheus.CounterVec
	handlerDuration *prometheus.HistogramVec
	deadLettered    *prometheus.CounterVec
	published       *prometheus.CounterVec
	publishDuration *prometheus.HistogramVec
}

// New creates the metrics and registers them. It fails when metrics of the
// same names are already registered with Config.Registerer.
func New(cfg Config) (*Metrics, error) {
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.DefaultRegisterer
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.DurationBuckets == nil {
		cfg.DurationBuckets = DefaultDurationBuckets
	}

	ns := cfg.Namespace
	m := &Metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "handler_attempts_total",
			Help: "Handler attempts by outcome: success, skipped, failure, permanent, timeout, panic or decode.",
		}, []string{"handler", "event_type", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "handler_retries_total",
			Help: "Handler attempts after the first one for an event, by outcome.",
		}, []string{"handler", "event_type", "outcome"}),
		handlerDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "handler_duration_seconds",
			Help:    "Duration of one handler attempt.",
			Buckets: cfg.DurationBuckets,
		}, []string{"handler", "event_type"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "dead_lettered_total",
			Help: "Events written to the dead letter queue.",
		}, []string{"handler", "event_type", "error_type"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "published_events_total",
			Help: "Events published, by outcome: ok or error.",
		}, []string{"event_type", "outcome"}),
		publishDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "publish_duration_seconds",
			Help:    "Duration of one publish call, until the broker stored its events.",
			Buckets: cfg.DurationBuckets,
		}, []string{"event_type"}),
	}

	for _, c := range []prometheus.Collector{
		m.attempts, m.retries, m.handlerDuration, m.deadLettered, m.published, m.publishDuration,
	} {
		if err := cfg.Registerer.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if errors.As(err, &already) {
				return nil, fmt.Errorf("%w: register metrics: %v; give each Metrics its own Registerer",
					core.ErrInvalidConfig, err)
			}
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}
