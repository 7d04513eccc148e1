package faults

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/adapters/nats"
	"github.com/deadletter/deadletter/adapters/redisstream"
	"github.com/deadletter/deadletter/core"
)

// EventType is the type of every event the fault tests publish.
const EventType = "fault.tested"

// Handlers are the names of the consumer's handlers, all of EventType.
var Handlers = []string{"fault_audit", "fault_billing", "fault_email"}

// Policy is the scaled retry policy of the consumer's handlers.
var Policy = core.Policy{Initial: 10 * time.Millisecond, MaxRetries: 3}

// ClaimIdle is how long an entry of a killed consumer waits before a live
// one takes it over (Redis ClaimIdle, NATS AckWait). Under the race
// detector on two shared cores, a live consumer sometimes held a message
// for over 300 ms before its handler ran, and with 300 ms here those
// messages were taken over and handled twice.
const ClaimIdle = time.Second

// ConsumerConfig configures a fault consumer.
type ConsumerConfig struct {
	// Adapter is "redis" or "nats".
	Adapter string

	// BrokerURL is the server of the adapter.
	BrokerURL string

	// Prefix is the adapter's prefix.
	Prefix string

	// RecordURL is the Redis server where handlers record their work.
	RecordURL string

	// RecordKey starts the keys of the records: each handler counts its
	// successful calls per event id in the hash "<RecordKey>:<handler>".
	RecordKey string

	// FailRate is the fraction of handler calls that fail.
	FailRate float64

	// PoisonRate is the fraction of (event, handler) pairs whose handler
	// fails on every attempt, so that they end in the DLQ. Poisoned
	// reports which pairs they are.
	PoisonRate float64

	// MaxInFlight is the adapter's MaxInFlight. 0 means its default. The
	// child process always uses the default.
	MaxInFlight int
}

// Environment variables that carry a ConsumerConfig to a child process.
const (
	EnvConsumer  = "FAULTS_CONSUMER"
	envAdapter   = "FAULTS_ADAPTER"
	envBrokerURL = "FAULTS_BROKER_URL"
	envPrefix    = "FAULTS_PREFIX"
	envRecordURL = "FAULTS_RECORD_URL"
	envRecordKey = "FAULTS_RECORD_KEY"
	envFailRate  = "FAULTS_FAIL_RATE"
	envPoison    = "FAULTS_POISON_RATE"
)

// Environ returns cfg as environment variables for ConsumerFromEnv.
func (cfg ConsumerConfig) Environ() []string {
	return []string{
		EnvConsumer + "=1",
		envAdapter + "=" + cfg.Adapter,
		envBrokerURL + "=" + cfg.BrokerURL,
		envPrefix + "=" + cfg.Prefix,
		envRecordURL + "=" + cfg.RecordURL,
		envRecordKey + "=" + cfg.RecordKey,
		fmt.Sprintf("%s=%g", envFailRate, cfg.FailRate),
		fmt.Sprintf("%s=%g", envPoison, cfg.PoisonRate),
	}
}

// ConsumerFromEnv reads the ConsumerConfig that Environ wrote.
func ConsumerFromEnv() (ConsumerConfig, error) {
	cfg := ConsumerConfig{
		Adapter:   os.Getenv(envAdapter),
		BrokerURL: os.Getenv(envBrokerURL),
		Prefix:    os.Getenv(envPrefix),
		RecordURL: os.Getenv(envRecordURL),
		RecordKey: os.Getenv(envRecordKey),
	}
	if _, err := fmt.Sscan(os.Getenv(envFailRate), &cfg.FailRate); err != nil {
		return cfg, fmt.Errorf("read %s: %w", envFailRate, err)
	}
	if _, err := fmt.Sscan(os.Getenv(envPoison), &cfg.PoisonRate); err != nil {
		return cfg, fmt.Errorf("read %s: %w", envPoison, err)
	}
	return cfg, nil
}

// NewAdapter returns the adapter that cfg names, with the short pauses of
// the fault tests and no size caps, so that nothing is trimmed away.
func NewAdapter(cfg ConsumerConfig, logger *slog.Logger) (core.Adapter, error) {
	switch cfg.Adapter {
	case "redis":
		return redisstream.NewAdapter(redisstream.Config{
			URL:               cfg.BrokerURL,
			Prefix:            cfg.Prefix,
			StreamMaxLen:      -1,
			DLQMaxLen:         -1,
			Block:             20 * time.Millisecond,
			RetryPollInterval: 5 * time.Millisecond,
			ClaimIdle:         ClaimIdle,
			MaxInFlight:       cfg.MaxInFlight,
			CloseTimeout:      2 * time.Second,
			Logger:            logger,
		})
	case "nats":
		return nats.NewAdapter(nats.Config{
			URL:              cfg.BrokerURL,
			Prefix:           cfg.Prefix,
			MaxEventsPerType: -1,
			DLQMaxLen:        -1,
			AckWait:          ClaimIdle,
			MaxInFlight:      cfg.MaxInFlight,
			CloseTimeout:     2 * time.Second,
			Logger:           logger,
		})
	}
	return nil, fmt.Errorf("create adapter: unknown adapter %q; use redis or nats", cfg.Adapter)
}

// errInjected is the failure a handler returns on purpose.
var errInjected = errors.New("injected failure")

// errPoisoned is the failure of every attempt of a poisoned pair.
var errPoisoned = errors.New("poisoned event")

// Poisoned reports whether handler fails every attempt at the event
// eventID. The choice depends only on the pair, so that every consumer
// process makes the same one.
func (cfg ConsumerConfig) Poisoned(eventID, handler string) bool {
	h := fnv.New64a()
	h.Write([]byte(handler + " " + eventID))
	return float64(h.Sum64()%1_000_000) < cfg.PoisonRate*1_000_000
}

// RunConsumer runs a bus with the handlers of the fault tests until ctx
// ends. It writes "ready" to stdout once every handler has subscribed.
func RunConsumer(ctx context.Context, cfg ConsumerConfig) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	adapter, err := NewAdapter(cfg, logger)
	if err != nil {
		return err
	}
	defer adapter.Close()

	opts, err := redis.ParseURL(cfg.RecordURL)
	if err != nil {
		return fmt.Errorf("parse record url: %w", err)
	}
	records := redis.NewClient(opts)
	defer records.Close()

	bus, err := deadletter.New(deadletter.Config{
		Adapter:       adapter,
		Policy:        Policy,
		DLQRetryPause: 50 * time.Millisecond,
		CloseTimeout:  5 * time.Second,
		Logger:        logger,
	})
	if err != nil {
		return err
	}
	for _, name := range Handlers {
		key := cfg.RecordKey + ":" + name
		handle := func(ctx context.Context, ev core.Event) error {
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			if cfg.Poisoned(ev.EventID, name) {
				return errPoisoned
			}
			if rand.Float64() < cfg.FailRate {
				return errInjected
			}
			return records.HIncrBy(ctx, key, ev.EventID, 1).Err()
		}
		if err := bus.Handle(name, EventType, handle); err != nil {
			return err
		}
	}

	go func() {
		select {
		case <-bus.Running():
			fmt.Println("ready")
		case <-ctx.Done():
		}
	}()
	return bus.Run(ctx)
}
