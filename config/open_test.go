package config

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/testredis"
)

// waitTimeout bounds every wait for an expected state.
const waitTimeout = 10 * time.Second

var discard = slog.New(slog.DiscardHandler)

// openBroker opens cfg's broker and closes it when the test ends.
func openBroker(t *testing.T, cfg Config) *Broker {
	t.Helper()
	b, err := Open(context.Background(), cfg, discard)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// deadLetter runs a bus whose one handler fails for good, publishes one
// event and waits for its DLQ entry.
func deadLetter(t *testing.T, adapter core.Adapter) core.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	bus, err := deadletter.New(deadletter.Config{Adapter: adapter, Logger: discard})
	require.NoError(t, err)
	defer bus.Close()
	require.NoError(t, bus.Handle("sync_to_legacy", "patient.registered", func(context.Context, core.Event) error {
		return core.Permanent(errors.New("legacy HIS rejected the record"))
	}))

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- bus.Run(runCtx) }()
	<-bus.Running()

	ev, err := core.NewEvent("patient.registered", "patient", uuid.NewString(), map[string]string{"ward": "cardiology"})
	require.NoError(t, err)
	require.NoError(t, bus.Publish(ctx, ev))
	require.Eventually(t, func() bool {
		n, err := adapter.DLQ().Len(ctx)
		return err == nil && n == 1
	}, waitTimeout, 10*time.Millisecond, "the event reaches the DLQ")

	stop()
	require.NoError(t, <-done)
	return ev
}

func TestOpenEmbedded(t *testing.T) {
	cfg := Config{Broker: BrokerEmbedded, DataDir: t.TempDir(), Prefix: "restart"}

	t.Run("KeepsDLQAcrossRestart", func(t *testing.T) {
		first, err := Open(context.Background(), cfg, discard)
		require.NoError(t, err)
		require.Equal(t, "RESTART_DLQ", first.DLQName)
		require.Equal(t, "deadletter dlq list --broker embedded --data-dir "+cfg.DataDir, first.InspectHint)
		ev := deadLetter(t, first.Adapter)
		before, err := first.Adapter.DLQ().List(context.Background(), core.ListOptions{})
		require.NoError(t, err)
		require.NoError(t, first.Close())

		second := openBroker(t, cfg)
		after, err := second.Adapter.DLQ().List(context.Background(), core.ListOptions{})
		require.NoError(t, err)
		require.Len(t, after, 1, "the DLQ entry survives the restart")
		require.Equal(t, ev.EventID, after[0].EventID)
		require.Equal(t, before, after, "the entry is unchanged")
	})

	t.Run("RejectsSecondProcessOnSameDir", func(t *testing.T) {
		openBroker(t, cfg)
		_, err := Open(context.Background(), cfg, discard)
		require.ErrorIs(t, err, ErrDataDirInUse)
		require.Contains(t, err.Error(), cfg.DataDir)
	})
}

func TestOpenMemory(t *testing.T) {
	b := openBroker(t, Config{Broker: BrokerMemory})
	require.Equal(t, "memory", b.Adapter.Name())
	require.Empty(t, b.InspectHint, "nothing outlives the process")
	require.Equal(t, "memory (set by broker)", b.Describe())
}

func TestOpenRedis(t *testing.T) {
	url := testredis.URL(t)

	t.Run("WithURL", func(t *testing.T) {
		prefix := testredis.Prefix()
		cfg := load(t, "", map[string]string{"REDIS_URL": url, "DEADLETTER_PREFIX": prefix})
		b := openBroker(t, cfg)
		require.Equal(t, "redis", b.Adapter.Name())
		require.Equal(t, prefix+":dlq", b.DLQName)
		require.Equal(t, "redis-cli XRANGE "+prefix+":dlq - +", b.InspectHint)
		require.Contains(t, b.Describe(), "(REDIS_URL is set)")
	})

	t.Run("AuthenticatesWithACLUser", func(t *testing.T) {
		client := testredis.Client(t)
		ctx := context.Background()
		prefix := testredis.Prefix()
		user := "deadletter-test-" + uuid.NewString()[:8]
		require.NoError(t, client.Do(ctx, "ACL", "SETUSER", user, "on", ">"+marker, "~"+prefix+":*", "+@all").Err())
		t.Cleanup(func() { client.Do(ctx, "ACL", "DELUSER", user) })

		cfg := load(t, "", map[string]string{"REDIS_URL": url, "REDIS_USERNAME": user, "REDIS_PASSWORD": marker,
			"DEADLETTER_PREFIX": prefix})
		b := openBroker(t, cfg)
		id, err := b.Adapter.DLQ().Add(ctx, core.Entry{EventData: []byte(`{}`), Handler: "h", Error: "e",
			FailedAt: time.Now().UTC(), EventType: "a.b", EventID: uuid.NewString()})
		require.NoError(t, err, "the ACL user may write under its prefix")
		t.Cleanup(func() { client.Del(ctx, prefix+":dlq") })
		require.NotEmpty(t, id)

		cfg.Redis.Password = "wrong-" + marker
		_, err = Open(ctx, cfg, discard)
		require.Error(t, err)
		require.Contains(t, err.Error(), "WRONGPASS")
		requireNoMarker(t, err.Error(), "AUTH error")
	})
}

func TestBrokerDescribe(t *testing.T) {
	b := &Broker{Choice: Choice{Broker: BrokerRedis, Reason: "REDIS_URL is set"}, Address: "127.0.0.1:6379"}
	require.Equal(t, "redis at 127.0.0.1:6379 (REDIS_URL is set)", b.Describe())
	b = &Broker{Choice: Choice{Broker: BrokerEmbedded, Reason: "set by --broker"}, Address: "/data"}
	require.Equal(t, "embedded NATS server storing in /data (set by --broker)", b.Describe())
	require.False(t, strings.Contains(b.Describe(), "\n"))
}

func TestRedisInspectHint(t *testing.T) {
	cases := map[string]string{
		"redis://127.0.0.1:6379/0":           "redis-cli",
		"redis://:secret@db.internal:6380/5": "redis-cli -h db.internal -p 6380 -n 5",
		"rediss://localhost:6379/2":          "redis-cli -n 2 --tls",
	}
	for url, want := range cases {
		opts, err := redis.ParseURL(url)
		require.NoError(t, err)
		require.Equal(t, want, redisCLICommand(opts), url)
	}
}
