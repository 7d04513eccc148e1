//go:build faults

package faults

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/core"
)

// scenarioTimeout bounds each wait of a scenario.
const scenarioTimeout = 60 * time.Second

// eventCount is the number of events the SIGKILL test publishes:
// FAULTS_EVENTS, or 2,000.
func eventCount(t *testing.T) int {
	t.Helper()
	raw := os.Getenv("FAULTS_EVENTS")
	if raw == "" {
		return 2000
	}
	n, err := strconv.Atoi(raw)
	require.NoError(t, err, "FAULTS_EVENTS must be a number")
	return n
}

func newEvents(t *testing.T, n int) []core.Event {
	t.Helper()
	events := make([]core.Event, n)
	for i := range events {
		ev, err := core.NewEvent(EventType, "order", uuid.NewString(), map[string]int{"n": i})
		require.NoError(t, err)
		events[i] = ev
	}
	return events
}

// consumer is a fault consumer running as a child process.
type consumer struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan struct{}
	err    error
}

// startConsumer starts the test binary as a fault consumer and waits until
// its handlers have subscribed. The process is killed when the test ends.
func startConsumer(t *testing.T, cfg ConsumerConfig) *consumer {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)

	c := &consumer{stderr: &lockedBuffer{}, exited: make(chan struct{})}
	c.cmd = exec.Command(exe, "-test.run=^$")
	c.cmd.Env = append(os.Environ(), cfg.Environ()...)
	c.cmd.Stderr = c.stderr
	stdout, err := c.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, c.cmd.Start())
	t.Cleanup(func() { c.kill(t) })

	ready := make(chan struct{})
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			if scanner.Text() == "ready" {
				close(ready)
			}
		}
		c.err = c.cmd.Wait()
		close(c.exited)
	}()

	select {
	case <-ready:
	case <-c.exited:
		t.Fatalf("consumer exited before it was ready: %v\n%s", c.err, c.stderr)
	case <-time.After(scenarioTimeout):
		t.Fatalf("consumer was not ready within %s\n%s", scenarioTimeout, c.stderr)
	}
	return c
}

// kill sends SIGKILL and waits for the process to end.
func (c *consumer) kill(t *testing.T) {
	t.Helper()
	_ = c.cmd.Process.Kill()
	select {
	case <-c.exited:
	case <-time.After(scenarioTimeout):
		t.Errorf("consumer %d did not exit after SIGKILL", c.cmd.Process.Pid)
	}
}

// stopBound is how long a consumer may take to exit after SIGTERM: the
// bus's CloseTimeout for running handlers, plus the adapter's.
const stopBound = 10 * time.Second

// stop sends SIGTERM, waits for a clean exit within stopBound and fails the
// test on a race report or an error.
func (c *consumer) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-c.exited:
	case <-time.After(stopBound):
		t.Fatalf("consumer did not stop within %s after SIGTERM\n%s", stopBound, c.stderr)
	}
	require.NoError(t, c.err, "consumer stderr:\n%s", c.stderr)
	require.NotContains(t, c.stderr.String(), "DATA RACE")
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// allEntries pages through the whole DLQ.
func allEntries(ctx context.Context, dlq core.DLQ) ([]core.Entry, error) {
	var all []core.Entry
	before := ""
	for {
		page, err := dlq.List(ctx, core.ListOptions{Limit: 1000, Before: before})
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < 1000 {
			return all, nil
		}
		before = page[len(page)-1].ID
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return strings.TrimSpace(s)
}
