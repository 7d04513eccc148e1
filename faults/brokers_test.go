//go:build faults

package faults

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// brokerStartTimeout bounds how long a broker may take to accept clients.
const brokerStartTimeout = 10 * time.Second

// restartableBroker is a broker of the test's own that it can stop and
// start again on the same address with the same data directory.
type restartableBroker interface {
	// URL is the broker's address, the same across restarts.
	URL() string
	// Stop stops the broker and waits until it is gone. With kill it
	// stops abruptly where the broker supports it.
	Stop(t *testing.T, kill bool)
	// Start starts the broker again and waits until it accepts clients.
	Start(t *testing.T)
	// StopName names how Stop stops the broker, for the fault table.
	StopName(kill bool) string
}

// freePort returns a loopback port that nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err, "find a free port")
	defer listener.Close()
	return listener.Addr().(*net.TCPAddr).Port
}

// redisBroker is a redis-server child process that appends every write to
// its AOF file and syncs it before replying, so it keeps every
// acknowledged write across a SIGKILL.
type redisBroker struct {
	path string
	dir  string
	port int

	cmd    *exec.Cmd
	exited chan struct{}
}

// startRedisBroker starts redis-server on a free loopback port, storing
// its data under a temporary directory. It stops the server when the test
// ends.
func startRedisBroker(t *testing.T) *redisBroker {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	require.NoError(t, err, "redis-server is not on PATH; install it (Debian: apt-get install redis-server) "+
		"or run bash scripts/ensure-redis")
	b := &redisBroker{path: path, dir: t.TempDir(), port: freePort(t)}
	b.Start(t)
	t.Cleanup(func() { b.Stop(t, true) })
	return b
}

func (b *redisBroker) URL() string {
	return fmt.Sprintf("redis://127.0.0.1:%d/0", b.port)
}

func (b *redisBroker) Start(t *testing.T) {
	t.Helper()
	b.cmd = exec.Command(b.path, "--bind", "127.0.0.1", "--port", strconv.Itoa(b.port),
		"--dir", b.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--daemonize", "no", "--logfile", filepath.Join(b.dir, "redis.log"))
	// The server dies with the test binary, even when the binary is killed.
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, b.cmd.Start(), "start %s", b.path)
	b.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(b.cmd, b.exited)

	opts, err := redis.ParseURL(b.URL())
	require.NoError(t, err)
	opts.MaxRetries = -1
	client := redis.NewClient(opts)
	defer client.Close()
	waitFor(t, brokerStartTimeout, "redis-server to answer PING at "+b.URL()+" (see "+
		filepath.Join(b.dir, "redis.log")+")", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return client.Ping(ctx).Err() == nil
	})
}

func (b *redisBroker) StopName(kill bool) string {
	if kill {
		return "SIGKILL"
	}
	return "SIGTERM"
}

// Stop sends SIGKILL with kill, otherwise SIGTERM, on which Redis syncs
// its AOF file and exits.
func (b *redisBroker) Stop(t *testing.T, kill bool) {
	t.Helper()
	if b.cmd == nil {
		return
	}
	signal := syscall.SIGTERM
	if kill {
		signal = syscall.SIGKILL
	}
	_ = b.cmd.Process.Signal(signal)
	select {
	case <-b.exited:
	case <-time.After(brokerStartTimeout):
		t.Fatalf("redis-server %d did not exit within %s of %s", b.cmd.Process.Pid, brokerStartTimeout, signal)
	}
	b.cmd = nil
}

// natsBroker is a NATS server with JetStream in this process, storing its
// streams in files. It cannot be killed abruptly: Stop shuts it down, which
// closes every client connection.
type natsBroker struct {
	opts server.Options
	srv  *server.Server
}

// startNATSBroker starts a NATS server with JetStream on a free loopback
// port, storing its streams under a temporary directory. It shuts the
// server down when the test ends.
func startNATSBroker(t *testing.T) *natsBroker {
	t.Helper()
	b := &natsBroker{opts: server.Options{
		Host:      "127.0.0.1",
		Port:      freePort(t),
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}}
	b.Start(t)
	t.Cleanup(func() { b.Stop(t, false) })
	return b
}

func (b *natsBroker) URL() string {
	return fmt.Sprintf("nats://127.0.0.1:%d", b.opts.Port)
}

func (b *natsBroker) Start(t *testing.T) {
	t.Helper()
	opts := b.opts
	srv, err := server.NewServer(&opts)
	require.NoError(t, err, "create nats server on port %d", b.opts.Port)
	go srv.Start()
	if !srv.ReadyForConnections(brokerStartTimeout) {
		srv.Shutdown()
		t.Fatalf("nats server on port %d not ready within %s", b.opts.Port, brokerStartTimeout)
	}
	b.srv = srv
}

func (b *natsBroker) StopName(bool) string { return "shutdown" }

func (b *natsBroker) Stop(t *testing.T, _ bool) {
	t.Helper()
	if b.srv == nil {
		return
	}
	b.srv.Shutdown()
	b.srv.WaitForShutdown()
	b.srv = nil
}
