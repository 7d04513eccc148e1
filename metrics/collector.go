package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/inspect"
)

// DefaultScrapeTimeout bounds the DLQ reads of one scrape.
const DefaultScrapeTimeout = 5 * time.Second

// DLQCollectorConfig configures a DLQCollector.
type DLQCollectorConfig struct {
	// DLQ is the queue to read. Required.
	DLQ core.DLQ

	// Namespace starts every metric name. "" means DefaultNamespace.
	Namespace string

	// Window is the number of newest entries counted by handler and event
	// type at each scrape. 0 means inspect.DefaultWindow (1,000); -1 turns
	// these counts off, leaving the two cheap reads of length and dropped.
	Window int

	// Timeout bounds the reads of one scrape. 0 means DefaultScrapeTimeout
	// (5 s).
	Timeout time.Duration

	// Logger receives failed reads. nil means slog.Default().
	Logger *slog.Logger
}

// DLQCollector is a prometheus.Collector that reads a DLQ at each scrape.
// A failed read sets deadletter_dlq_up to 0 and leaves the other metrics
// out of that scrape.
type DLQCollector struct {
	cfg         DLQCollectorConfig
	up          *prometheus.Desc
	entries     *prometheus.Desc
	dropped     *prometheus.Desc
	byHandler   *prometheus.Desc
	byEventType *prometheus.Desc
}

var _ prometheus.Collector = (*DLQCollector)(nil)

// NewDLQCollector returns a collector for cfg.DLQ. Register it with a
// prometheus.Registerer.
func NewDLQCollector(cfg DLQCollectorConfig) *DLQCollector {
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.Window == 0 {
		cfg.Window = inspect.DefaultWindow
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultScrapeTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	name := func(n string) string { return prometheus.BuildFQName(cfg.Namespace, "dlq", n) }
	return &DLQCollector{
		cfg:     cfg,
		up:      prometheus.NewDesc(name("up"), "1 when the last read of the DLQ succeeded, else 0.", nil, nil),
		entries: prometheus.NewDesc(name("entries"), "Entries in the dead letter queue.", nil, nil),
		dropped: prometheus.NewDesc(name("dropped_total"),
			"Entries removed from the dead letter queue at its size cap.", nil, nil),
		byHandler: prometheus.NewDesc(name("recent_entries_by_handler"),
			"Entries among the newest ones of the DLQ (the collector's window), by handler.",
			[]string{"handler"}, nil),
		byEventType: prometheus.NewDesc(name("recent_entries_by_event_type"),
			"Entries among the newest ones of the DLQ (the collector's window), by event type.",
			[]string{"event_type"}, nil),
	}
}

// Describe sends the descriptions of the collector's metrics.
func (c *DLQCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.entries
	ch <- c.dropped
	ch <- c.byHandler
	ch <- c.byEventType
}

// Collect reads the DLQ and sends its metrics.
func (c *DLQCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()

	summary, err := c.read(ctx)
	if err != nil {
		c.cfg.Logger.LogAttrs(ctx, slog.LevelError, "read dlq for metrics failed",
			slog.String(core.LogError, err.Error()))
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}

	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(summary.Total))
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(summary.Dropped))
	for _, count := range summary.ByHandler {
		ch <- prometheus.MustNewConstMetric(c.byHandler, prometheus.GaugeValue, float64(count.Count), count.Name)
	}
	for _, count := range summary.ByEventType {
		ch <- prometheus.MustNewConstMetric(c.byEventType, prometheus.GaugeValue, float64(count.Count), count.Name)
	}
}

func (c *DLQCollector) read(ctx context.Context) (inspect.Summary, error) {
	if c.cfg.Window > 0 {
		return inspect.Summarize(ctx, c.cfg.DLQ, inspect.SummaryOptions{Window: c.cfg.Window})
	}
	total, err := c.cfg.DLQ.Len(ctx)
	if err != nil {
		return inspect.Summary{}, err
	}
	dropped, err := c.cfg.DLQ.Dropped(ctx)
	if err != nil {
		return inspect.Summary{}, err
	}
	return inspect.Summary{Total: total, Dropped: dropped}, nil
}
