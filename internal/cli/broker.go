package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"

	"github.com/deadletter/deadletter/config"
	"github.com/deadletter/deadletter/core"
)

// brokerOptions holds the flags of the configuration: --config, the broker
// and its connection, and for some commands the monitor's settings and
// the log level. Every command reads its configuration here, so a new
// broker or key is added in the config package only.
type brokerOptions struct {
	flags config.Flags
}

// addFlags registers --config and the broker's flags, such as --broker,
// --redis-url, --nats-url and --prefix.
func (o *brokerOptions) addFlags(flags *pflag.FlagSet) {
	o.flags.AddConfigFlag(flags)
	o.flags.Add(flags, config.ConnectionKeys...)
}

// addMonitorFlags registers the monitor's thresholds and sinks.
func (o *brokerOptions) addMonitorFlags(flags *pflag.FlagSet) {
	o.flags.Add(flags, config.MonitorKeys...)
}

// addLogLevelFlag registers --log-level.
func (o *brokerOptions) addLogLevelFlag(flags *pflag.FlagSet) {
	o.flags.Add(flags, "log_level")
}

// load reads the configuration from the file, the environment and the
// flags given.
func (o *brokerOptions) load() (config.Config, error) {
	return o.flags.Load()
}

// broker is an open connection to the DLQ of one broker.
type broker struct {
	*config.Broker

	// source names the DLQ for people, for example "events:dlq".
	source string
}

func (b *broker) dlq() core.DLQ { return b.Adapter.DLQ() }

// openBroker connects to the configured broker. When the broker was
// guessed, it prints which one on stderr, since the commands' results depend on
// it. A command that reads a DLQ written by another process rejects the
// memory broker, whose DLQ lives in one process only.
func openBroker(ctx context.Context, cfg config.Config, logger *slog.Logger, stderr io.Writer,
	sharedDLQ bool, options ...config.OpenOption) (*broker, error) {
	// go-redis prints each failed dial on its own; the command reports the
	// failure once, as its error.
	redis.SetLogger(redisLogger{logger})
	b, err := config.Open(ctx, cfg, logger, options...)
	if err != nil {
		return nil, err
	}
	if sharedDLQ && b.Choice.Broker == config.BrokerMemory {
		_ = b.Close()
		return nil, fmt.Errorf("the memory broker keeps its DLQ inside one process; " +
			"use --broker redis, nats or embedded")
	}
	if b.Choice.Guessed {
		fmt.Fprintf(stderr, "broker: %s\n", b.Describe())
	}
	return &broker{Broker: b, source: b.DLQName}, nil
}

// redisLogger passes go-redis's own log lines to slog at debug level.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}
