package cli

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/adapters/nats"
)

var (
	natsOnce     sync.Once
	natsServer   string
	natsErr      error
	natsShutdown = func() {}
)

func TestMain(m *testing.M) {
	code := m.Run()
	natsShutdown()
	os.Exit(code)
}

// natsURL returns NATS_URL, or the URL of a server started on first use,
// which TestMain stops when the tests end.
func natsURL(t *testing.T) string {
	t.Helper()
	if url := os.Getenv("NATS_URL"); url != "" {
		return url
	}
	natsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "deadletter-cli-nats-")
		if err != nil {
			natsErr = err
			return
		}
		var shutdown func()
		natsServer, shutdown, natsErr = nats.StartEmbedded(dir)
		if natsErr != nil {
			_ = os.RemoveAll(dir)
			return
		}
		natsShutdown = func() {
			shutdown()
			_ = os.RemoveAll(dir)
		}
	})
	require.NoError(t, natsErr, "start a NATS server for the tests, or set NATS_URL")
	return natsServer
}

// deleteNATSStreams removes the streams and bucket of a prefix, so that a
// run against a shared server leaves nothing behind.
func deleteNATSStreams(t *testing.T, url, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := nats.DeleteStreams(ctx, url, prefix); err != nil {
		t.Logf("clean up: %v", err)
	}
}
