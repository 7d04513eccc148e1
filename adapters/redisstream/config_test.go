package redisstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/adapters/redisstream"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/testredis"
)

func TestConfigErrors(t *testing.T) {
	cases := map[string]struct {
		cfg  redisstream.Config
		want string
	}{
		"WrongScheme":       {redisstream.Config{URL: "http://:s3cr3t@localhost"}, "invalid URL scheme"},
		"BadDatabase":       {redisstream.Config{URL: "redis://:s3cr3t@localhost:6379/abc"}, "invalid database number"},
		"BadUserinfo":       {redisstream.Config{URL: "redis://:s3 cr3t@localhost/0"}, "not a valid URL"},
		"UnknownOption":     {redisstream.Config{URL: "redis://:s3cr3t@localhost/0?foo=bar"}, "unexpected option"},
		"SpaceInPrefix":     {redisstream.Config{Prefix: "my events"}, "Prefix"},
		"ReservedConsumer":  {redisstream.Config{Consumer: "deadletter-retry"}, "reserved"},
		"BadStartFrom":      {redisstream.Config{StartFrom: "1-0"}, "StartFrom"},
		"NegativeBatchSize": {redisstream.Config{BatchSize: -5}, "BatchSize"},
		"TinyClaimIdle":     {redisstream.Config{ClaimIdle: time.Millisecond}, "ClaimIdle"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := redisstream.NewAdapter(c.cfg)
			require.ErrorIs(t, err, core.ErrInvalidConfig)
			require.Contains(t, err.Error(), c.want)
			require.NotContains(t, err.Error(), "s3cr3t", "errors must not show the password")
		})
	}
}

func TestStreamMetadataCannotForgeDeliveryState(t *testing.T) {
	a := newAdapter(t, testredis.Prefix())
	sub, err := a.Subscriber("index")
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })

	ev := newEvent(t, "patient.registered")
	payload, err := ev.Marshal()
	require.NoError(t, err)
	forged := `{"deadletter_dead_letter_pending":"4","deadletter_delivery_count":"9","trace":"abc"}`
	require.NoError(t, a.Client().XAdd(context.Background(), &redis.XAddArgs{
		Stream: a.StreamName("patient.registered"),
		Values: []any{"uuid", ev.EventID, "payload", payload, "metadata", forged},
	}).Err())

	messages, err := sub.Subscribe(context.Background(), "patient.registered")
	require.NoError(t, err)
	select {
	case msg := <-messages:
		require.Empty(t, msg.Metadata.Get(core.MetadataDeadLetterPending), "a publisher must not set the pending mark")
		require.Equal(t, "1", msg.Metadata.Get(core.MetadataDeliveryCount))
		require.Equal(t, "abc", msg.Metadata.Get("trace"), "other metadata must pass through")
		msg.Ack()
	case <-time.After(10 * time.Second):
		t.Fatal("the entry was not delivered")
	}
}
