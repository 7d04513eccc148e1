package redisstream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/adapters/redisstream"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/testredis"
)

// errOutage is the error of every call while an outageHook is down.
var errOutage = errors.New("dial tcp: connect: connection refused (test outage)")

// outageHook fails every command of a real Redis client while it is down,
// as when the server restarts, so that a test can time an outage exactly.
type outageHook struct {
	down atomic.Bool
}

func (h *outageHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *outageHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.down.Load() {
			cmd.SetErr(errOutage)
			return errOutage
		}
		return next(ctx, cmd)
	}
}

func (h *outageHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.down.Load() {
			for _, cmd := range cmds {
				cmd.SetErr(errOutage)
			}
			return errOutage
		}
		return next(ctx, cmds)
	}
}

// newOutageAdapter returns an adapter whose client fails every call while
// the returned hook is down. A nil logger means slog.Default().
func newOutageAdapter(t *testing.T, consumer string, logger *slog.Logger) (*redisstream.Adapter, *outageHook) {
	t.Helper()
	opts, err := redis.ParseURL(testredis.URL(t))
	require.NoError(t, err)
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	hook := &outageHook{}
	client.AddHook(hook)

	a, err := redisstream.NewAdapter(redisstream.Config{
		Client:            client,
		Prefix:            testredis.Prefix(),
		Consumer:          consumer,
		Block:             20 * time.Millisecond,
		RetryPollInterval: 5 * time.Millisecond,
		ClaimIdle:         300 * time.Millisecond,
		CloseTimeout:      2 * time.Second,
		Logger:            logger,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	return a, hook
}

// logBuffer collects log lines from concurrent writers.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freezingProxy forwards connections to a real Redis server and, while it
// is frozen, forwards nothing, as a server that hangs: writes succeed and
// no reply comes.
type freezingProxy struct {
	frozen   atomic.Bool
	listener net.Listener
}

// startFreezingProxy starts a proxy to the test server and returns it with
// a URL for it.
func startFreezingProxy(t *testing.T) (*freezingProxy, string) {
	t.Helper()
	opts, err := redis.ParseURL(testredis.URL(t))
	require.NoError(t, err)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &freezingProxy{listener: listener}
	t.Cleanup(func() { _ = listener.Close() })
	go p.accept(opts.Addr)
	return p, fmt.Sprintf("redis://%s/%d", listener.Addr(), opts.DB)
}

func (p *freezingProxy) accept(target string) {
	for {
		client, err := p.listener.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", target)
		if err != nil {
			_ = client.Close()
			continue
		}
		go p.forward(client, server)
		go p.forward(server, client)
	}
}

// forward copies from src to dst, holding each chunk while the proxy is
// frozen.
func (p *freezingProxy) forward(src, dst net.Conn) {
	defer src.Close()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for p.frozen.Load() {
			time.Sleep(5 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// endOutageAfter brings the hook back up after d.
func endOutageAfter(t *testing.T, hook *outageHook, d time.Duration) {
	t.Helper()
	timer := time.AfterFunc(d, func() { hook.down.Store(false) })
	t.Cleanup(func() { timer.Stop() })
}

func TestBrokerOutage(t *testing.T) {
	t.Run("RetriesEventWhoseNackFailed", func(t *testing.T) {
		a, hook := newOutageAdapter(t, "", nil)
		bus := newBus(t, a, deadletter.Config{})
		var calls atomic.Int32
		handled := make(chan struct{})
		require.NoError(t, bus.Handle("index", "patient.registered", func(context.Context, core.Event) error {
			if calls.Add(1) == 1 {
				// Redis goes down as the attempt fails, so the retry
				// cannot be scheduled at first.
				hook.down.Store(true)
				endOutageAfter(t, hook, 200*time.Millisecond)
				return errors.New("search index unavailable")
			}
			close(handled)
			return nil
		}))
		runBus(t, bus)

		require.NoError(t, bus.Publish(context.Background(), newEvent(t, "patient.registered")))
		select {
		case <-handled:
		case <-time.After(10 * time.Second):
			t.Fatal("an event whose retry could not be scheduled during an outage must be retried after it")
		}
	})

	t.Run("RunWaitsForRedisAtStart", func(t *testing.T) {
		a, hook := newOutageAdapter(t, "", nil)
		bus := newBus(t, a, deadletter.Config{})
		handled := make(chan struct{}, 1)
		require.NoError(t, bus.Handle("index", "patient.registered", func(context.Context, core.Event) error {
			handled <- struct{}{}
			return nil
		}))
		// Redis is down as the bus subscribes its handler.
		hook.down.Store(true)
		endOutageAfter(t, hook, 500*time.Millisecond)
		runBus(t, bus)

		require.NoError(t, bus.Publish(context.Background(), newEvent(t, "patient.registered")))
		select {
		case <-handled:
		case <-time.After(10 * time.Second):
			t.Fatal("a bus started while Redis was down must handle events once it is back")
		}
	})

	t.Run("AcknowledgesAfterOutage", func(t *testing.T) {
		a, hook := newOutageAdapter(t, "", nil)
		bus := newBus(t, a, deadletter.Config{})
		var calls atomic.Int32
		require.NoError(t, bus.Handle("index", "patient.registered", func(context.Context, core.Event) error {
			calls.Add(1)
			// Redis goes down as the handler succeeds, so the first
			// acknowledgement fails.
			hook.down.Store(true)
			endOutageAfter(t, hook, 200*time.Millisecond)
			return nil
		}))
		runBus(t, bus)

		require.NoError(t, bus.Publish(context.Background(), newEvent(t, "patient.registered")))
		stream := a.StreamName("patient.registered")
		waitFor(t, "the entry acknowledged after the outage", func() bool {
			pending, err := a.Client().XPending(context.Background(), stream, "index").Result()
			return err == nil && pending.Count == 0 && calls.Load() == 1
		})
		time.Sleep(500 * time.Millisecond) // longer than ClaimIdle
		require.Equal(t, int32(1), calls.Load(), "an acknowledgement retried after the outage must spare a redelivery")
	})

	t.Run("DeliversOwnPendingEntryAgain", func(t *testing.T) {
		// An entry pending under this process's own consumer name but not
		// handed out, as when the reply of a read was lost in a restart,
		// or when a process restarts under a fixed Consumer name.
		a, _ := newOutageAdapter(t, "worker-1", nil)
		ctx := context.Background()
		stream := a.StreamName("patient.registered")
		ev := newEvent(t, "patient.registered")
		require.NoError(t, a.Publisher().Publish("patient.registered", message(t, ev)))
		require.NoError(t, a.Client().XGroupCreateMkStream(ctx, stream, "index", "0").Err())
		require.NoError(t, a.Client().XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: "index", Consumer: "worker-1", Streams: []string{stream, ">"}, Count: 1,
		}).Err())

		bus := newBus(t, a, deadletter.Config{})
		handled := make(chan string, 1)
		require.NoError(t, bus.Handle("index", "patient.registered", func(_ context.Context, got core.Event) error {
			handled <- got.EventID
			return nil
		}))
		runBus(t, bus)

		select {
		case id := <-handled:
			require.Equal(t, ev.EventID, id)
		case <-time.After(10 * time.Second):
			t.Fatal("an entry pending under the subscription's own consumer and not in flight must be delivered again")
		}
	})

	t.Run("LogsEachFailureOncePerSecond", func(t *testing.T) {
		var out logBuffer
		logger := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}))
		a, hook := newOutageAdapter(t, "", logger)
		bus := newBus(t, a, deadletter.Config{Logger: logger})
		for _, handler := range []string{"index", "mail", "billing"} {
			require.NoError(t, bus.Handle(handler, "patient.registered", func(context.Context, core.Event) error {
				return nil
			}))
		}
		runBus(t, bus)

		hook.down.Store(true)
		time.Sleep(500 * time.Millisecond) // the outage, well within one throttle interval
		hook.down.Store(false)

		// Every loop of three subscriptions fails many times during the
		// outage: the read loop about every 50 ms and the retry poller
		// every 5 ms without a backoff.
		lines := map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if _, rest, found := strings.Cut(line, "msg=\""); found {
				msg, _, _ := strings.Cut(rest, "\"")
				lines[msg]++
			}
		}
		require.NotEmpty(t, lines, "the outage must be logged")
		for msg, n := range lines {
			require.Equal(t, 1, n, "%q must be logged once per second across subscriptions, not %d times", msg, n)
		}
	})

	t.Run("PublishEndsWithContextWhileServerHangs", func(t *testing.T) {
		proxy, url := startFreezingProxy(t)
		a, err := redisstream.NewAdapter(redisstream.Config{URL: url, Prefix: testredis.Prefix()})
		require.NoError(t, err)
		t.Cleanup(func() { _ = a.Close() })
		bus := newBus(t, a, deadletter.Config{})
		require.NoError(t, bus.Publish(context.Background(), newEvent(t, "patient.registered")))

		proxy.frozen.Store(true)
		t.Cleanup(func() { proxy.frozen.Store(false) })
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		err = bus.Publish(ctx, newEvent(t, "patient.registered"))
		took := time.Since(start)

		require.Error(t, err, "a publish to a server that does not reply must fail")
		// Without the context's deadline on the socket, go-redis v9.23
		// waits its read timeout of 5 s.
		require.Less(t, took, time.Second, "a publish must end soon after its context's deadline")
	})
	t.Run("PublishEndsAtPublishTimeoutWhileServerHangs", func(t *testing.T) {
		proxy, url := startFreezingProxy(t)
		a, err := redisstream.NewAdapter(redisstream.Config{
			URL: url, Prefix: testredis.Prefix(), PublishTimeout: 200 * time.Millisecond,
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = a.Close() })
		bus := newBus(t, a, deadletter.Config{})
		require.NoError(t, bus.Publish(context.Background(), newEvent(t, "patient.registered")))

		proxy.frozen.Store(true)
		t.Cleanup(func() { proxy.frozen.Store(false) })
		start := time.Now()
		err = bus.Publish(context.Background(), newEvent(t, "patient.registered"))
		took := time.Since(start)

		require.Error(t, err, "a publish to a server that does not reply must fail")
		require.Less(t, took, time.Second, "a publish without a deadline must end soon after PublishTimeout")
	})
}
