//go:build faults

package faults

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
)

// logCounter counts the log lines of warning level and above by level and
// message, and writes them to an output, except those with a quiet message.
type logCounter struct {
	out   slog.Handler
	quiet map[string]bool

	mu     sync.Mutex
	counts map[string]int // level + " " + message
}

func newLogCounter(w io.Writer, quiet ...string) *logCounter {
	c := &logCounter{
		out:    slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}),
		quiet:  map[string]bool{},
		counts: map[string]int{},
	}
	for _, msg := range quiet {
		c.quiet[msg] = true
	}
	return c
}

func (c *logCounter) logger() *slog.Logger {
	return slog.New(&countingHandler{counter: c, out: c.out})
}

// summarize logs how many times each message was logged.
func (c *logCounter) summarize(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, key := range sortedCounts(c.counts) {
		t.Logf("log: %d lines: %s", c.counts[key], key)
	}
}

// countingHandler is the slog.Handler of a logCounter's loggers.
type countingHandler struct {
	counter *logCounter
	out     slog.Handler
}

func (h *countingHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.out.Enabled(ctx, level)
}

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	h.counter.mu.Lock()
	h.counter.counts[r.Level.String()+" "+r.Message]++
	h.counter.mu.Unlock()
	if h.counter.quiet[r.Message] {
		return nil
	}
	return h.out.Handle(ctx, r)
}

func (h *countingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &countingHandler{counter: h.counter, out: h.out.WithAttrs(attrs)}
}

func (h *countingHandler) WithGroup(name string) slog.Handler {
	return &countingHandler{counter: h.counter, out: h.out.WithGroup(name)}
}
