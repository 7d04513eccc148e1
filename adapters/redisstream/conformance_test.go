package redisstream_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deadletter/deadletter/adapters/redisstream"
	"github.com/deadletter/deadletter/conformance"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/testredis"
)

// TestConformance runs the suite every adapter must pass against real
// Redis. Each adapter gets its own key prefix; Reopen opens a second
// adapter on the same prefix, as a restarted process would.
func TestConformance(t *testing.T) {
	var mu sync.Mutex
	prefixes := map[core.Adapter]string{}

	open := func(t testing.TB, prefix string, maxInFlight int) core.Adapter {
		a, err := redisstream.NewAdapter(redisstream.Config{
			MaxInFlight:       maxInFlight,
			URL:               testredis.URL(t),
			Prefix:            prefix,
			Block:             20 * time.Millisecond,
			RetryPollInterval: 5 * time.Millisecond,
			ClaimIdle:         300 * time.Millisecond,
			CloseTimeout:      2 * time.Second,
		})
		if err != nil {
			t.Fatalf("open redis adapter: %v", err)
		}
		t.Cleanup(func() { _ = a.Close() })
		mu.Lock()
		prefixes[a] = prefix
		mu.Unlock()
		return a
	}

	conformance.Run(t, conformance.Config{
		NewAdapter: func(t testing.TB) core.Adapter { return open(t, testredis.Prefix(), 0) },
		// One message in flight keeps the stream's order.
		NewOrderedAdapter: func(t testing.TB) core.Adapter { return open(t, testredis.Prefix(), 1) },
		Reopen: func(t testing.TB, a core.Adapter) core.Adapter {
			mu.Lock()
			prefix := prefixes[a]
			mu.Unlock()
			return open(t, prefix, 0)
		},
		// An entry whose metadata field is not JSON cannot become a
		// message; the adapter keeps its payload field as event_data.
		PublishRaw: func(t testing.TB, a core.Adapter, eventType string, raw []byte) {
			redisAdapter := a.(*redisstream.Adapter)
			err := redisAdapter.Client().XAdd(context.Background(), &redis.XAddArgs{
				Stream: redisAdapter.StreamName(eventType),
				Values: []any{"payload", raw, "metadata", "not a JSON object"},
			}).Err()
			if err != nil {
				t.Fatalf("add raw entry: %v", err)
			}
		},
	})
}
