package conformance

import (
	"context"
	"fmt"
	"sync"
	"testing"

	deadletter "github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/core"
)

func competingContracts() []Contract {
	return []Contract{
		{"CompetingConsumersShareEvents", checkCompetingConsumers},
	}
}

// checkCompetingConsumers runs one handler in two buses: on two adapters of
// the same broker state when cfg can reopen the adapter, as two processes
// of one service would, or else on one adapter.
func checkCompetingConsumers(t testing.TB, cfg Config) {
	a := cfg.NewAdapter(t)
	requireCapability(t, a, "CompetingConsumers", a.Capabilities().CompetingConsumers)
	second := a
	if cfg.Reopen != nil && a.Capabilities().Durable {
		second = cfg.Reopen(t, a)
	}
	eventType := newEventType("patient.registered")

	var mu sync.Mutex
	handled := map[string][]int{}
	indexer := func(consumer int) handler {
		return handler{
			name: "index_patient", eventType: eventType,
			policy: core.Policy{MaxRetries: 3, Initial: cfg.Pause},
			fn: func(ctx context.Context, ev core.Event) error {
				mu.Lock()
				defer mu.Unlock()
				handled[ev.EventID] = append(handled[ev.EventID], consumer)
				return nil
			},
		}
	}
	counts := func() (events, duplicates int, perConsumer [2]int) {
		mu.Lock()
		defer mu.Unlock()
		for _, consumers := range handled {
			duplicates += len(consumers) - 1
			for _, c := range consumers {
				perConsumer[c]++
			}
		}
		return len(handled), duplicates, perConsumer
	}

	startBus(t, cfg, deadletter.Config{Adapter: a}, indexer(0))
	publisher := startBus(t, cfg, deadletter.Config{Adapter: second}, indexer(1))

	const total = 50
	for range total {
		publisher.publish(t, newEvent(t, eventType, nil))
	}

	waitFor(t, cfg.Timeout, func() bool { events, _, _ := counts(); return events == total }, func() string {
		events, _, _ := counts()
		return fmt.Sprintf("two consumers of one handler must together handle every event; %d of %d were "+
			"handled", events, total)
	})
	holds(t, cfg.quietPeriod(), func() bool { _, duplicates, _ := counts(); return duplicates == 0 },
		func() string {
			_, duplicates, perConsumer := counts()
			return fmt.Sprintf("consumers of one handler must share its events, each handled once when "+
				"nothing fails; %d deliveries were duplicates (consumer 1 handled %d, consumer 2 %d)",
				duplicates, perConsumer[0], perConsumer[1])
		})

	_, _, perConsumer := counts()
	t.Logf("consumer 1 handled %d events, consumer 2 handled %d", perConsumer[0], perConsumer[1])
}
