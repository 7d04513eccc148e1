package securitytest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/adapters/nats"
	"github.com/deadletter/deadletter/adapters/redisstream"
	"github.com/deadletter/deadletter/core"
)

// startTimeout bounds how long a test server may take to accept clients.
const startTimeout = 10 * time.Second

// broker is a server that requires a password, with what the tests need
// to reach it as a service and as an operator.
type broker struct {
	name string

	// url reaches the server with the password in it.
	url string

	// badURLs carry the password, or a wrong one, and must fail to connect
	// or to parse.
	badURLs []string

	newAdapter func(url, prefix string, logger *slog.Logger) (core.Adapter, error)

	// urlFlag is the CLI flag that takes url.
	urlFlag string

	// prefix returns a key prefix or stream prefix unique to one test.
	prefix func() string

	// stop stops the server, as when the broker goes away.
	stop func()
}

// flags returns the CLI flags that reach the DLQ under prefix through url.
func (b broker) flags(url, prefix string) []string {
	return []string{"--broker", b.name, b.urlFlag, url, "--prefix", prefix}
}

// startRedisBroker runs a redis-server of its own on a free loopback port,
// with the password in its config file rather than on its command line.
func startRedisBroker(t *testing.T, s secrets) broker {
	path, err := exec.LookPath("redis-server")
	require.NoError(t, err, "redis-server is not on PATH; install it (Debian: apt-get install redis-server)")

	dir := t.TempDir()
	port := freePort(t)
	conf := fmt.Sprintf("bind 127.0.0.1\nport %d\nrequirepass %s\nsave \"\"\nappendonly no\ndir %q\n",
		port, s.password, dir)
	confPath := filepath.Join(dir, "redis.conf")
	require.NoError(t, os.WriteFile(confPath, []byte(conf), 0o600))

	cmd := exec.Command(path, confPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	t.Cleanup(stop)

	hostPort := "127.0.0.1:" + strconv.Itoa(port)
	client := redis.NewClient(&redis.Options{Addr: hostPort, Password: s.password, MaxRetries: -1})
	defer client.Close()
	require.Eventually(t, func() bool { return client.Ping(context.Background()).Err() == nil },
		startTimeout, 20*time.Millisecond, "redis-server on %s did not answer", hostPort)

	deadPort := strconv.Itoa(freePort(t))
	return broker{
		name: "redis",
		url:  "redis://:" + s.password + "@" + hostPort + "/0",
		badURLs: []string{
			"redis://:" + s.wrongPassword + "@" + hostPort + "/0",
			// max_retries=-1 turns off go-redis's retries of a refused
			// connection, which took 1.7 s here on the default settings.
			"redis://app:" + s.password + "@127.0.0.1:" + deadPort + "/0?max_retries=-1",
			// An unescaped '/', '?' or '#' in a password moves the rest of
			// the URL out of the user info.
			"redis://:" + s.password + "/x@" + hostPort + "/0",
			"redis://:" + s.password + "?x@" + hostPort + "/0",
			"redis://:" + s.password + "#x@" + hostPort + "/0",
			"redis://:6379/" + s.password + "@" + hostPort + "/0",
			"redis://:6379?" + s.password + "@" + hostPort + "/0",
			"redis://:" + s.password + "@127.0.0.1:notaport/0",
			"http://:" + s.password + "@" + hostPort,
		},
		newAdapter: func(url, prefix string, logger *slog.Logger) (core.Adapter, error) {
			return redisstream.NewAdapter(redisstream.Config{
				URL: url, Prefix: prefix, Logger: logger, Block: 20 * time.Millisecond,
				RetryPollInterval: 5 * time.Millisecond, CloseTimeout: 2 * time.Second,
			})
		},
		urlFlag: "--redis-url",
		prefix:  func() string { return "sec-" + randomLetters(8) },
		stop:    stop,
	}
}

// startNATSBroker runs a NATS server with JetStream in this process, on a
// free loopback port, that accepts one user with the password.
func startNATSBroker(t *testing.T, s secrets) broker {
	srv := startNATSServer(t, server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(),
		Username: "app", Password: s.password, NoLog: true, NoSigs: true,
	})
	hostPort := srv.Addr().String()
	deadHostPort := "127.0.0.1:" + strconv.Itoa(freePort(t))

	b := natsBroker()
	// Two URLs of the one server, so that every place that shows the URL
	// must hide the password of each URL of a list.
	b.url = "nats://app:" + s.password + "@" + hostPort + ",nats://app:" + s.password + "@" + hostPort
	b.badURLs = []string{
		"nats://app:" + s.wrongPassword + "@" + hostPort,
		// NATS reads a user name without a password as a token.
		"nats://" + s.password + "@" + hostPort,
		"nats://app:" + s.password + "@" + deadHostPort,
		"nats://app:" + s.password + "@" + deadHostPort + ",nats://app:" + s.password + "@127.0.0.1:" +
			strconv.Itoa(freePort(t)),
		"nats://app:" + s.password + "/x@" + hostPort,
		"nats://app:" + s.password + "?x@" + hostPort,
		"nats://app:" + s.password + "@[::1",
		"redis://app:" + s.wrongPassword + "@" + hostPort,
	}
	b.stop = func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
	return b
}

// natsBroker returns the parts of a NATS broker that do not depend on its
// server.
func natsBroker() broker {
	return broker{
		name: "nats",
		newAdapter: func(url, prefix string, logger *slog.Logger) (core.Adapter, error) {
			return nats.NewAdapter(nats.Config{URL: url, Prefix: prefix, Logger: logger, CloseTimeout: 2 * time.Second})
		},
		urlFlag: "--nats-url",
		prefix:  func() string { return "sec" + randomLetters(8) },
	}
}

// startNATSServer starts a NATS server with opts and stops it when the
// test ends.
func startNATSServer(t *testing.T, opts server.Options) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&opts)
	require.NoError(t, err)
	go srv.Start()
	require.True(t, srv.ReadyForConnections(startTimeout), "nats server did not start")
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

// freePort returns a loopback port that nothing listened on a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer listener.Close()
	return listener.Addr().(*net.TCPAddr).Port
}
