package nats

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"
)

// BenchmarkPublishBatch publishes events of about 200 bytes in calls of 100.
func BenchmarkPublishBatch(b *testing.B) {
	a := newTestAdapter(b, func(c *Config) { c.MaxEventsPerType = -1 })
	payload := make([]byte, 200)
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += 100 {
		msgs := make([]*message.Message, min(100, b.N-sent))
		for i := range msgs {
			msgs[i] = message.NewMessage(strconv.Itoa(sent+i), payload)
		}
		require.NoError(b, a.Publisher().Publish("bench.published", msgs...))
	}
}

// BenchmarkConsume measures how fast one subscription hands out and
// acknowledges events that are already in the stream.
func BenchmarkConsume(b *testing.B) {
	a := newTestAdapter(b, func(c *Config) { c.MaxEventsPerType = -1 })
	payload := make([]byte, 200)
	for sent := 0; sent < b.N; sent += 500 {
		msgs := make([]*message.Message, min(500, b.N-sent))
		for i := range msgs {
			msgs[i] = message.NewMessage(strconv.Itoa(sent+i), payload)
		}
		require.NoError(b, a.Publisher().Publish("bench.consumed", msgs...))
	}

	b.ResetTimer()
	ch := subscribe(b, a, "bench", "bench.consumed")
	for range b.N {
		msg := <-ch
		go msg.Ack()
	}
}

// TestPublishLatency reports the p50 and p99 latency of publishing one
// event at a time and fails when p99 passes the 100 ms goal.
func TestPublishLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("measures 1,000 publishes")
	}
	a := newTestAdapter(t)
	payload := []byte(`{"event_type":"patient.registered"}`)
	latencies := make([]time.Duration, 1000)
	for i := range latencies {
		start := time.Now()
		require.NoError(t, a.Publisher().Publish("patient.registered", message.NewMessage(strconv.Itoa(i), payload)))
		latencies[i] = time.Since(start)
	}
	slices.Sort(latencies)
	p50, p99 := latencies[len(latencies)/2], latencies[len(latencies)*99/100]
	t.Logf("publish latency over %d events: p50 %s, p99 %s", len(latencies), p50, p99)
	require.Less(t, p99, 100*time.Millisecond)
}
