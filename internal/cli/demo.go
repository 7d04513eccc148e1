package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/deadletter/deadletter/adapters/redisstream"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/examples/hospital"
)

type demoOptions struct {
	redisURL string
	prefix   string
	scale    float64
	logLevel string
}

func newDemoCommand(stdout, stderr io.Writer) *cobra.Command {
	opts := demoOptions{redisURL: os.Getenv("REDIS_URL")}
	if opts.redisURL == "" {
		opts.redisURL = redisstream.DefaultURL
	}

	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a hospital system whose handlers fail, retry and dead-letter, on Redis",
		Long: "demo publishes a registered patient and two booked appointments to Redis Streams.\n" +
			"send_welcome_email times out twice and then succeeds, create_billing_account succeeds\n" +
			"at once, and sync_to_legacy always fails, so its event reaches the dead letter queue\n" +
			"after pauses of 2s, 4s and 8s (about 15s in all; --scale 0.01 shortens them).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd, opts, stdout, stderr)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.redisURL, "redis-url", opts.redisURL, "Redis server, as redis://host:port/db (default from REDIS_URL)")
	flags.StringVar(&opts.prefix, "prefix", redisstream.DefaultPrefix, "prefix of the Redis keys")
	flags.Float64Var(&opts.scale, "scale", 1, "factor applied to the retry pauses; 0.01 turns 2s into 20ms")
	flags.StringVar(&opts.logLevel, "log-level", "info", "lowest level of log lines on stderr: debug, info, warn or error")
	return cmd
}

func runDemo(cmd *cobra.Command, opts demoOptions, stdout, stderr io.Writer) error {
	if opts.scale <= 0 {
		return fmt.Errorf("invalid --scale %g: it must be above 0", opts.scale)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(opts.logLevel)); err != nil {
		return fmt.Errorf("invalid --log-level %q: use debug, info, warn or error", opts.logLevel)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{
		Level:       level,
		ReplaceAttr: core.ReplaceLevelName,
	}))

	adapter, err := redisstream.NewAdapter(redisstream.Config{
		URL:    opts.redisURL,
		Prefix: opts.prefix,
		Logger: logger,
		// The demo's handlers are quick, so a short read block keeps
		// shutdown short too.
		Block: 100 * time.Millisecond,
	})
	if err != nil {
		return err
	}
	defer adapter.Close()

	_, err = hospital.Run(cmd.Context(), hospital.Config{
		Adapter:     adapter,
		Scale:       opts.scale,
		Out:         stdout,
		Logger:      logger,
		InspectHint: fmt.Sprintf("redis-cli XRANGE %s:dlq - +", opts.prefix),
	})
	return err
}
