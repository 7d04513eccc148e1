package nats

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/core"
)

// waitTimeout bounds every wait for an expected message or state.
const waitTimeout = 10 * time.Second

// testURL is the server the tests use: NATS_URL, or an embedded server
// that TestMain starts.
var testURL string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	testURL = os.Getenv("NATS_URL")
	if testURL == "" {
		dir, err := os.MkdirTemp("", "deadletter-nats-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "create store dir for the embedded nats server:", err)
			return 1
		}
		defer os.RemoveAll(dir)

		url, shutdown, err := StartEmbedded(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err, "; set NATS_URL to use a running server, such as nats://127.0.0.1:4222")
			return 1
		}
		defer shutdown()
		testURL = url
	}
	return m.Run()
}

// newPrefix returns a prefix that no other test uses.
func newPrefix() string {
	return "t" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
}

// newTestAdapter returns an adapter with a prefix of its own, whose streams
// are deleted when the test ends.
func newTestAdapter(t testing.TB, configure ...func(*Config)) *Adapter {
	t.Helper()
	cfg := Config{URL: testURL, Prefix: newPrefix(), CloseTimeout: 2 * time.Second}
	for _, f := range configure {
		f(&cfg)
	}
	// Cleanups run last first, so the streams go after the adapter closes.
	t.Cleanup(func() { deleteStreams(t, cfg.Prefix) })
	return openAdapter(t, cfg)
}

// openAdapter returns an adapter for cfg, closed when the test ends.
func openAdapter(t testing.TB, cfg Config) *Adapter {
	t.Helper()
	a, err := NewAdapter(cfg)
	require.NoError(t, err, "connect to NATS at %s; start one with `nats-server -js` or set NATS_URL", cfg.URL)
	t.Cleanup(func() { require.NoError(t, a.Close()) })
	return a
}

// reopen returns a second adapter on the same prefix as a, as another
// process of the same service would open it.
func reopen(t testing.TB, a *Adapter) *Adapter {
	t.Helper()
	cfg := a.cfg
	cfg.Conn = nil
	return openAdapter(t, cfg)
}

// deleteStreams removes the streams and bucket of a prefix, so that a run
// against a shared server leaves nothing behind.
func deleteStreams(t testing.TB, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := DeleteStreams(ctx, testURL, prefix); err != nil {
		t.Logf("clean up: %v", err)
	}
}

// newTestEvent returns a valid event of eventType.
func newTestEvent(t testing.TB, eventType string) core.Event {
	t.Helper()
	ev, err := core.NewEvent(eventType, "patient", uuid.NewString(), map[string]string{"name": "Ada"})
	require.NoError(t, err)
	return ev
}

// newEventMessage returns ev as the message Bus.Publish sends.
func newEventMessage(t testing.TB, ev core.Event) *message.Message {
	t.Helper()
	payload, err := ev.Marshal()
	require.NoError(t, err)
	return message.NewMessage(ev.EventID, payload)
}

// receive returns the next message of ch, failing the test after the
// wait timeout.
func receive(t testing.TB, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case msg, ok := <-ch:
		require.True(t, ok, "message channel closed before a message arrived")
		return msg
	case <-time.After(waitTimeout):
		t.Fatalf("no message within %s", waitTimeout)
		return nil
	}
}

// subscribe subscribes a handler of a to eventType until the test ends.
func subscribe(t testing.TB, a *Adapter, handler, eventType string) <-chan *message.Message {
	t.Helper()
	sub, err := a.Subscriber(handler)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sub.Close()) })
	ch, err := sub.Subscribe(context.Background(), eventType)
	require.NoError(t, err)
	return ch
}

// consumerConfigForTest returns a consumer on the events stream of a that
// filters eventType, as another tool might have created it.
func consumerConfigForTest(a *Adapter, name, eventType string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       name,
		FilterSubject: a.names.eventSubject(eventType),
		AckPolicy:     jetstream.AckExplicitPolicy,
	}
}
