package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/deadletter/deadletter/config"
	"github.com/deadletter/deadletter/examples/hospital"
)

type demoOptions struct {
	broker brokerOptions
	scale  float64
}

func newDemoCommand(stdout, stderr io.Writer) *cobra.Command {
	opts := &demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a hospital system whose handlers fail, retry and dead-letter",
		Long: "demo publishes a registered patient and two booked appointments. send_welcome_email times\n" +
			"out twice and then succeeds, create_billing_account succeeds at once, and sync_to_legacy\n" +
			"always fails, so its event reaches the dead letter queue after pauses of 2s, 4s and 8s\n" +
			"(about 15s in all; --scale 0.01 shortens them). The demo always uses these pauses, not\n" +
			"the configured retry policies.\n\n" +
			"It runs on the broker that --broker or DEADLETTER_BROKER names. Without one it runs on\n" +
			"Redis when REDIS_URL is set, on NATS when NATS_URL is set, on the Redis at\n" +
			"127.0.0.1:6379 when one answers, and otherwise on a NATS server started inside the\n" +
			"process, whose DLQ is kept under --data-dir for the dlq commands.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd, opts, stdout, stderr)
		},
	}
	flags := cmd.Flags()
	opts.broker.addFlags(flags)
	opts.broker.addLogLevelFlag(flags)
	flags.Float64Var(&opts.scale, "scale", 1, "factor applied to the retry pauses; 0.01 turns 2s into 20ms")
	return cmd
}

func runDemo(cmd *cobra.Command, opts *demoOptions, stdout, stderr io.Writer) error {
	if opts.scale <= 0 {
		return fmt.Errorf("invalid --scale %g: it must be above 0", opts.scale)
	}
	cfg, err := opts.broker.load()
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.LogLevel)

	// The demo's handlers are quick, so a short Redis read keeps shutdown
	// short too.
	b, err := openBroker(cmd.Context(), cfg, logger, io.Discard, false,
		config.WithRedisBlock(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer b.Close()
	// The demo is for people, so it names its broker even when configured.
	fmt.Fprintf(stderr, "broker: %s\n", b.Describe())

	_, err = hospital.Run(cmd.Context(), hospital.Config{
		Adapter:     b.Adapter,
		Scale:       opts.scale,
		Out:         stdout,
		Logger:      logger,
		InspectHint: b.InspectHint,
	})
	return err
}
