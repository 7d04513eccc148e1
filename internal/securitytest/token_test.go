package securitytest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/core"
)

// TestNATSTokenStaysHidden runs a service on a NATS server that takes a
// token, given as the user name of the URL, which the redaction of
// passwords alone would print. The server restarts under the service, so
// that the adapter logs the lost and the restored connection. Then the
// operator lists the DLQ with the same URL.
func TestNATSTokenStaysHidden(t *testing.T) {
	clearConfigEnv(t)
	s := newSecrets()
	tr := newTranscript()
	var logs lockedBuffer
	logger := captureLogs(t, &logs)

	opts := server.Options{
		Host: "127.0.0.1", Port: freePort(t), JetStream: true, StoreDir: t.TempDir(),
		Authorization: s.password, NoLog: true, NoSigs: true,
	}
	srv := startNATSServer(t, opts)
	url := "nats://" + s.password + "@" + srv.Addr().String()

	b := natsBroker()
	prefix := b.prefix()
	adapter, err := b.newAdapter(url, prefix, logger)
	require.NoError(t, err)
	defer adapter.Close()
	svc := startService(t, adapter, logger, prometheus.NewRegistry(), s)

	ev, err := core.NewEvent(eventType, "patient", uuid.NewString(), map[string]string{"name": s.payload})
	require.NoError(t, err)
	require.NoError(t, svc.bus.Publish(context.Background(), ev))
	waitForEntries(t, adapter.DLQ(), failingHandlers, 0)

	// The DLQ responds again once the adapter has reconnected, since the
	// first server is gone by then.
	srv.Shutdown()
	srv.WaitForShutdown()
	srv = startNATSServer(t, opts)
	require.Eventually(t, func() bool {
		_, err := adapter.DLQ().Len(context.Background())
		return err == nil
	}, waitTimeout, 10*time.Millisecond, "the adapter reconnects to the restarted server")

	code, out, stderr := runCLI(tr, "dlq list", append([]string{"dlq", "list", "--limit", "1"},
		b.flags(url, prefix)...)...)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "more: deadletter dlq list", "the next page hint repeats the broker URL")

	svc.stop()
	srv.Shutdown()
	tr.add("log", logs.String())
	tr.requireNoSecrets(t, s, nil)
}
