package metrics

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/inspect"
)

// InstrumentAdapter returns an adapter that behaves as a and records the
// duration and outcome of each publish, and each event written to its DLQ.
func (m *Metrics) InstrumentAdapter(a core.Adapter) core.Adapter {
	return &adapter{
		Adapter:   a,
		publisher: &publisher{Publisher: a.Publisher(), metrics: m},
		dlq:       m.InstrumentDLQ(a.DLQ()),
	}
}

type adapter struct {
	core.Adapter
	publisher *publisher
	dlq       core.DLQ
}

func (a *adapter) Publisher() message.Publisher { return a.publisher }
func (a *adapter) DLQ() core.DLQ                { return a.dlq }

type publisher struct {
	message.Publisher
	metrics *Metrics
}

// Publish publishes and records one observation per call, under the topic,
// which is the event type.
func (p *publisher) Publish(topic string, messages ...*message.Message) error {
	start := time.Now()
	err := p.Publisher.Publish(topic, messages...)
	p.metrics.publishDuration.WithLabelValues(topic).Observe(time.Since(start).Seconds())

	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	p.metrics.published.WithLabelValues(topic, outcome).Add(float64(len(messages)))
	return err
}

// InstrumentDLQ returns a DLQ that behaves as d and counts each entry added.
// It implements core.Replayer when d does.
func (m *Metrics) InstrumentDLQ(d core.DLQ) core.DLQ {
	counted := &dlq{DLQ: d, metrics: m}
	if r, ok := d.(core.Replayer); ok {
		return &replayingDLQ{dlq: counted, replayer: r}
	}
	return counted
}

type dlq struct {
	core.DLQ
	metrics *Metrics
}

// Add writes the entry and counts it once the write succeeded.
func (d *dlq) Add(ctx context.Context, e core.Entry) (string, error) {
	id, err := d.DLQ.Add(ctx, e)
	if err == nil {
		d.metrics.deadLettered.WithLabelValues(e.Handler, inspect.EventTypeName(e), string(e.ErrorType)).Inc()
	}
	return id, err
}

type replayingDLQ struct {
	*dlq
	replayer core.Replayer
}

func (d *replayingDLQ) Replay(ctx context.Context, id string, replayedAt time.Time) error {
	return d.replayer.Replay(ctx, id, replayedAt)
}
