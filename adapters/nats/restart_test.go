package nats

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// restartableServer is an embedded NATS server that a test stops and
// starts again on the same port with the same store directory.
type restartableServer struct {
	opts server.Options
	srv  *server.Server
}

func startRestartableServer(t *testing.T) *restartableServer {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := listener.Addr().(*net.TCPAddr).Port
	require.NoError(t, listener.Close())

	s := &restartableServer{opts: server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	}}
	s.start(t)
	t.Cleanup(s.stop)
	return s
}

func (s *restartableServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.opts.Port) }

func (s *restartableServer) start(t *testing.T) {
	t.Helper()
	opts := s.opts
	srv, err := server.NewServer(&opts)
	require.NoError(t, err)
	go srv.Start()
	require.True(t, srv.ReadyForConnections(waitTimeout), "nats server on port %d not ready", s.opts.Port)
	s.srv = srv
}

func (s *restartableServer) stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

// syncBuffer collects log lines from concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestServerRestart(t *testing.T) {
	t.Run("SubscriptionResumesSoonAfter", func(t *testing.T) {
		srv := startRestartableServer(t)
		var logs syncBuffer
		a := openAdapter(t, Config{
			URL:          srv.url(),
			Prefix:       newPrefix(),
			AckWait:      300 * time.Millisecond,
			CloseTimeout: 2 * time.Second,
			Logger:       slog.New(slog.NewTextHandler(&logs, nil)),
		})
		ch := subscribe(t, a, "index", "patient.registered")
		first := newTestEvent(t, "patient.registered")
		require.NoError(t, a.Publisher().Publish("patient.registered", newEventMessage(t, first)))
		receive(t, ch).Ack()

		srv.stop()
		time.Sleep(200 * time.Millisecond) // the outage
		srv.start(t)
		restarted := time.Now()

		// The publish waits for the server to store the event; it is sent
		// once the connection is back.
		second := newTestEvent(t, "patient.registered")
		require.NoError(t, a.Publisher().Publish("patient.registered", newEventMessage(t, second)))
		msg := receive(t, ch)
		resumed := time.Since(restarted)
		require.Equal(t, second.EventID, msg.UUID, "the subscription must resume with the durable consumer kept")
		msg.Ack()

		// nats.go waits ReconnectWait between rounds of attempts: with its
		// default of 2 s, the first attempt after the restart comes about
		// 1.8 s after it.
		require.Less(t, resumed, 1500*time.Millisecond, "handling must resume within a reconnect wait")
		require.Contains(t, logs.String(), "nats connection lost; reconnecting")
		require.Contains(t, logs.String(), "nats connection restored")
		require.Equal(t, 1, strings.Count(logs.String(), "nats connection lost"),
			"one outage must be logged once")
	})
}

func TestFailedCallLogs(t *testing.T) {
	t.Run("LogsFailedAcksOncePerSecond", func(t *testing.T) {
		conn, err := nats.Connect(testURL)
		require.NoError(t, err)
		t.Cleanup(conn.Close)
		var logs syncBuffer
		a := newTestAdapter(t, func(cfg *Config) {
			cfg.Conn = conn
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		})
		ch := subscribe(t, a, "index", "patient.registered")
		const n = 20
		for range n {
			msg := newEventMessage(t, newTestEvent(t, "patient.registered"))
			require.NoError(t, a.Publisher().Publish("patient.registered", msg))
		}
		received := make([]*message.Message, n)
		for i := range received {
			received[i] = receive(t, ch)
		}

		// Every acknowledgement fails once the connection is closed.
		conn.Close()
		for _, msg := range received {
			msg.Ack()
		}
		waitForLog := time.Now().Add(waitTimeout)
		for !strings.Contains(logs.String(), "acknowledge message failed") && time.Now().Before(waitForLog) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // the other acknowledgements fail meanwhile
		require.Equal(t, 1, strings.Count(logs.String(), "acknowledge message failed"),
			"%d failed acknowledgements within a second must be logged once", n)
	})
}
