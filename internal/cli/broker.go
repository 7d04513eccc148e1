package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"

	"github.com/deadletter/deadletter/adapters/redisstream"
	"github.com/deadletter/deadletter/core"
)

// brokerOptions selects the broker whose DLQ a command works on. Every
// command that reads the DLQ takes these flags, so a new broker is added
// here only.
//
// TODO: only Redis can be selected; the NATS adapter needs its flags here
// before the dlq, monitor and serve commands can reach its DLQ.
type brokerOptions struct {
	redisURL string
	prefix   string
}

// addFlags registers --redis-url and --prefix.
func (o *brokerOptions) addFlags(flags *pflag.FlagSet) {
	o.redisURL = os.Getenv("REDIS_URL")
	if o.redisURL == "" {
		o.redisURL = redisstream.DefaultURL
	}
	flags.StringVar(&o.redisURL, "redis-url", o.redisURL,
		"Redis server, as redis://host:port/db (default from REDIS_URL)")
	flags.StringVar(&o.prefix, "prefix", redisstream.DefaultPrefix, "prefix of the Redis keys")
}

// broker is an open connection to the DLQ of one broker.
type broker struct {
	adapter core.Adapter

	// source names the DLQ for people, for example "events:dlq".
	source string
}

func (b *broker) dlq() core.DLQ { return b.adapter.DLQ() }

func (b *broker) Close() error { return b.adapter.Close() }

// open connects to the broker and pings it.
func (o *brokerOptions) open(_ context.Context, logger *slog.Logger) (*broker, error) {
	// go-redis prints each failed dial on its own; the command reports the
	// failure once, as its error.
	redis.SetLogger(redisLogger{logger})
	adapter, err := redisstream.NewAdapter(redisstream.Config{
		URL:    o.redisURL,
		Prefix: o.prefix,
		Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	return &broker{adapter: adapter, source: adapter.DLQ().(*redisstream.DLQ).Stream()}, nil
}

// redisLogger passes go-redis's own log lines to slog at debug level.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}
