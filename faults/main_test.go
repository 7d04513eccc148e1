//go:build faults

package faults

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// TestMain runs the fault consumer instead of the tests when the test
// binary is started as a child process with EnvConsumer set.
func TestMain(m *testing.M) {
	if os.Getenv(EnvConsumer) == "" {
		os.Exit(m.Run())
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cfg, err := ConsumerFromEnv()
	if err == nil {
		err = RunConsumer(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fault consumer:", err)
		os.Exit(1)
	}
}
