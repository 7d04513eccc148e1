package conformance

import (
	"log/slog"
	"testing"
	"time"

	"github.com/deadletter/deadletter/core"
)

// Defaults of Config.
const (
	// DefaultPause is the initial retry pause of the scaled policies.
	DefaultPause = 50 * time.Millisecond

	// DefaultTimeout bounds each wait for an expected outcome.
	DefaultTimeout = 10 * time.Second
)

// Config describes how the suite creates adapters on the broker under test.
type Config struct {
	// NewAdapter returns a fresh adapter isolated from every other: its
	// streams or subjects and its DLQ have names that no other adapter
	// uses. It registers the adapter's Close with t.Cleanup. Some contracts
	// close the adapter themselves before the cleanup runs, so a second
	// Close must return nil. Required.
	NewAdapter func(t testing.TB) core.Adapter

	// Reopen returns a new adapter on the same broker state as a, as a
	// process restarting or a second process of the same service would
	// see it. The suite may have closed a already. Reopen registers the new
	// adapter's Close with t.Cleanup. nil when the adapter is not durable;
	// the contracts that need it are then skipped.
	Reopen func(t testing.TB, a core.Adapter) core.Adapter

	// NewOrderedAdapter returns a fresh adapter, like NewAdapter, whose
	// subscribers hand out one message at a time in the broker's order and
	// wait for its acknowledgement before the next, as with a Redis
	// MaxInFlight of 1. Watermill's two order tests run on it. nil skips
	// them.
	NewOrderedAdapter func(t testing.TB) core.Adapter

	// PublishRaw puts a message on the stream or subject of eventType that
	// the adapter's subscriber cannot decode into a Watermill message, such
	// as a Redis stream entry without its payload field. raw is the part of
	// that message the adapter keeps as the DLQ entry's event_data. nil
	// skips the contract on broker-level decode failures; a payload that is
	// not an event is tested through the publisher either way.
	PublishRaw func(t testing.TB, a core.Adapter, eventType string, raw []byte)

	// Pause is the initial retry pause of the scaled policies the contracts
	// use; later pauses grow from it. 0 means DefaultPause (50 ms). Raise it
	// for a broker whose redelivery is coarser than a few milliseconds.
	Pause time.Duration

	// Timeout bounds each wait for an expected outcome, such as an entry
	// appearing in the DLQ. 0 means DefaultTimeout (10 s).
	Timeout time.Duration

	// Logger receives the log lines of the buses the contracts run. nil
	// discards them.
	Logger *slog.Logger
}

// withDefaults returns a copy of cfg with its zero fields filled, failing t
// when a required field is missing.
func (cfg Config) withDefaults(t testing.TB) Config {
	t.Helper()
	if cfg.NewAdapter == nil {
		t.Fatal("conformance: Config.NewAdapter is required")
	}
	if cfg.Pause <= 0 {
		cfg.Pause = DefaultPause
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// Contract is one behaviour that every adapter must show.
type Contract struct {
	// Name is the contract as a CamelCase statement; Run uses it as the
	// subtest name.
	Name string

	// Check runs the contract on adapters created by cfg. It fails t with
	// the broken contract in the message, or skips t naming the missing
	// capability. It runs as well on any testing.TB, such as a recorder in
	// the suite's own tests.
	Check func(t testing.TB, cfg Config)
}

// Contracts returns deadletter's contracts in the order Run runs them.
func Contracts() []Contract {
	contracts := [][]Contract{
		retryContracts(),
		entryContracts(),
		dlqContracts(),
		isolationContracts(),
		restartContracts(),
		competingContracts(),
		inputContracts(),
		replayContracts(),
	}

	var all []Contract
	for _, group := range contracts {
		for _, c := range group {
			check := c.Check
			c.Check = func(t testing.TB, cfg Config) {
				t.Helper()
				check(t, cfg.withDefaults(t))
			}
			all = append(all, c)
		}
	}
	return all
}

// Run runs Watermill's publisher and subscriber suite on the adapter as the
// subtest WatermillPubSub, then every contract as a parallel subtest of its
// own name.
func Run(t *testing.T, cfg Config) {
	cfg = cfg.withDefaults(t)

	t.Run("WatermillPubSub", func(t *testing.T) {
		runWatermill(t, cfg)
	})
	t.Run("WatermillPubSubOrdered", func(t *testing.T) {
		runWatermillOrdered(t, cfg)
	})
	for _, c := range Contracts() {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			c.Check(t, cfg)
		})
	}
}
