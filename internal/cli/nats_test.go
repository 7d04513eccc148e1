package cli

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	natsclient "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/adapters/nats"
)

var (
	natsOnce   sync.Once
	natsServer string
	natsErr    error
)

// natsURL returns NATS_URL, or the URL of a server started in this test
// binary, storing under a directory removed when the binary ends.
//
// NOTE: the started server runs until the test binary exits, because
// tests of several packages share nothing that could stop it earlier.
func natsURL(t *testing.T) string {
	t.Helper()
	if url := os.Getenv("NATS_URL"); url != "" {
		return url
	}
	natsOnce.Do(func() {
		var dir string
		if dir, natsErr = os.MkdirTemp("", "deadletter-cli-nats-"); natsErr != nil {
			return
		}
		natsServer, _, natsErr = nats.StartEmbedded(dir)
	})
	require.NoError(t, natsErr, "start a NATS server for the tests, or set NATS_URL")
	return natsServer
}

// deleteNATSStreams removes the streams and bucket of a prefix.
func deleteNATSStreams(t *testing.T, url, prefix string) {
	conn, err := natsclient.Connect(url)
	if err != nil {
		t.Logf("delete streams of prefix %s: %v", prefix, err)
		return
	}
	defer conn.Close()
	js, err := jetstream.New(conn)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	upper := strings.ToUpper(prefix)
	for _, stream := range []string{"_EVENTS", "_DLQ", "_DLQ_REPLAYED", "_RETRY_STATE"} {
		_ = js.DeleteStream(ctx, upper+stream)
	}
	_ = js.DeleteKeyValue(ctx, upper+"_DLQ_COUNTERS")
}
