// Package testredis gives tests a real Redis server: the one at REDIS_URL
// when set, otherwise the one on 127.0.0.1:6379 when it responds, otherwise a
// redis-server from PATH started on a free loopback port for the test
// binary's lifetime.
package testredis

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// DefaultURL is the address tests try when REDIS_URL is not set.
const DefaultURL = "redis://127.0.0.1:6379/0"

var (
	once   sync.Once
	url    string
	urlErr error
)

// URL returns the address of a Redis server for tests, starting one if
// needed. It fails the test, saying how to install Redis, when no server
// responds and none can be started.
func URL(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		url, urlErr = find()
		if urlErr == nil {
			removeStaleKeys(url)
		}
	})
	if urlErr != nil {
		t.Fatalf("no Redis for the tests: %v", urlErr)
	}
	return url
}

// Client returns a client of the test server, closed when the test ends.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(URL(t))
	if err != nil {
		t.Fatalf("parse Redis URL: %v", err)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// staleAfter is how long a test key must have gone unused before
// removeStaleKeys deletes it. Tests of other packages run at the same time
// on the same server, so only keys far older than any test run go.
const staleAfter = time.Hour

// removeStaleKeys deletes the keys that earlier test runs left under
// Prefix's "test-" names and that nothing has touched for staleAfter, so
// that a shared server does not fill up run after run. It gives up quietly
// after a few seconds; the next run goes on.
func removeStaleKeys(rawURL string) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return
	}
	client := redis.NewClient(opts)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	iter := client.Scan(ctx, 0, "test-*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		idle, err := client.ObjectIdleTime(ctx, key).Result()
		if err == nil && idle >= staleAfter {
			client.Del(ctx, key)
		}
	}
}

// Prefix returns a key prefix unique to this call, so that tests running
// side by side on one server never share a stream.
func Prefix() string {
	return "test-" + uuid.NewString()[:8] + ":events"
}

func find() (string, error) {
	if env := os.Getenv("REDIS_URL"); env != "" {
		if err := ping(env); err != nil {
			return "", fmt.Errorf("REDIS_URL=%s does not respond: %w", env, err)
		}
		return env, nil
	}
	if ping(DefaultURL) == nil {
		return DefaultURL, nil
	}
	return start()
}

func ping(rawURL string) error {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return err
	}
	opts.DialTimeout = 500 * time.Millisecond
	client := redis.NewClient(opts)
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return client.Ping(ctx).Err()
}

// start runs redis-server on a free loopback port without persistence. The
// server is killed when the test binary exits, through the parent-death
// signal (Linux only).
func start() (string, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("nothing responds on %s and redis-server is not on PATH; "+
			"install it (Debian: apt-get install redis-server) or set REDIS_URL", DefaultURL)
	}

	port, err := freePort()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(path, "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s: %w", path, err)
	}

	started := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ping(started) == nil {
			return started, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return "", fmt.Errorf("redis-server on port %d did not respond within 10s", port)
}

func freePort() (int, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer listener.Close()
	return listener.Addr().(*net.TCPAddr).Port, nil
}
