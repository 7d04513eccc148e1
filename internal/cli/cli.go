// Package cli holds the command tree of the deadletter command, kept apart
// from its main package so that tests can run it.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Main runs the command with args and returns the process exit code. Errors
// are printed as one line on stderr.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, os.Stdin, stdout, stderr)
}

// run runs the command until it ends or ctx is done.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	root.SetIn(stdin)
	err := root.ExecuteContext(ctx)
	var status exitStatus
	switch {
	case errors.As(err, &status):
		return int(status)
	case err != nil:
		fmt.Fprintf(stderr, "deadletter: %v\n", err)
		return 1
	}
	return 0
}

// exitStatus is returned by a command that succeeded but reports a state
// through its exit code, as monitor --once does. Nothing is printed for it.
type exitStatus int

func (s exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "deadletter",
		Short:         "Retries, dead letter queue and replay for event handlers",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newDemoCommand(stdout, stderr),
		newDLQCommand(stdout, stderr),
		newMonitorCommand(stdout, stderr),
		newServeCommand(stdout, stderr),
	)
	return root
}
