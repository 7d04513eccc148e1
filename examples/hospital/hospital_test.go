package hospital_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/adapters/redisstream"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/examples/hospital"
	"github.com/deadletter/deadletter/internal/testredis"
)

func TestDemo(t *testing.T) {
	t.Run("EndsWithOneDeadLetterOnRedis", func(t *testing.T) {
		adapter, err := redisstream.NewAdapter(redisstream.Config{
			URL: testredis.URL(t), Prefix: testredis.Prefix(), Block: 20 * time.Millisecond,
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = adapter.Close() })

		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		summary, err := hospital.Run(ctx, hospital.Config{Adapter: adapter, Scale: 0.01, Out: &out})
		require.NoError(t, err)

		require.Equal(t, 3, summary.Published)
		require.Equal(t, 3, summary.Attempts[hospital.SendWelcomeEmail], "welcome email: two timeouts, then success")
		require.Equal(t, 1, summary.Succeeded[hospital.SendWelcomeEmail])
		require.Equal(t, 1, summary.Attempts[hospital.CreateBillingAccount], "billing must run once")
		require.Equal(t, 4, summary.Attempts[hospital.SyncToLegacy], "legacy sync: first try plus 3 retries")
		require.Equal(t, 2, summary.Succeeded[hospital.SendAppointmentReminder])

		require.Len(t, summary.DeadLettered, 1)
		entry := summary.DeadLettered[0]
		require.Equal(t, hospital.SyncToLegacy, entry.Handler)
		require.Equal(t, 4, entry.Attempts)
		require.Equal(t, "patient.registered", entry.EventType)

		n, err := adapter.DLQ().Len(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, n, "the DLQ must hold exactly the legacy sync's entry")

		for _, want := range []string{"attempt 4", "Dead-lettered entry", "event_data", "Summary after"} {
			require.Contains(t, out.String(), want)
		}
	})
}

func TestDemoConfig(t *testing.T) {
	t.Run("RejectsMissingAdapter", func(t *testing.T) {
		_, err := hospital.Run(context.Background(), hospital.Config{})
		require.ErrorIs(t, err, core.ErrInvalidConfig)
	})
}
