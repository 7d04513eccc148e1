package nats

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// embeddedMaxPayload is the largest message the embedded server accepts,
// raised from the NATS default of 1 MiB so that an event of 1 MiB and its
// DLQ entry fit.
const embeddedMaxPayload = 8 << 20

// embeddedStartTimeout bounds how long StartEmbedded waits for the server to
// accept connections.
const embeddedStartTimeout = 10 * time.Second

// StartEmbedded starts a NATS server with JetStream inside this process,
// listening on a free port of 127.0.0.1 and storing its streams under dir.
// It accepts messages of up to 8 MiB.
// It returns the server's URL for Config.URL and a function that shuts the
// server down and waits for it to stop. It suits demos and tests that need
// no server installed; a service should run its own nats-server.
func StartEmbedded(dir string) (url string, shutdown func(), err error) {
	srv, err := server.NewServer(&server.Options{
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: embeddedMaxPayload,
	})
	if err != nil {
		return "", nil, fmt.Errorf("start embedded nats server in %s: %w", dir, err)
	}

	go srv.Start()
	if !srv.ReadyForConnections(embeddedStartTimeout) {
		srv.Shutdown()
		return "", nil, fmt.Errorf("start embedded nats server in %s: not ready after %s", dir, embeddedStartTimeout)
	}

	shutdown = func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
	return srv.ClientURL(), shutdown, nil
}
