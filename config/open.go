package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	natsclient "github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/deadletter/deadletter/adapters/memory"
	"github.com/deadletter/deadletter/adapters/nats"
	"github.com/deadletter/deadletter/adapters/redisstream"
	"github.com/deadletter/deadletter/core"
)

// natsConnectTimeout bounds the connection to a NATS server.
const natsConnectTimeout = 10 * time.Second

// Broker is an open connection to the configured broker, with what people
// need to find its DLQ. Close it when done.
type Broker struct {
	// Adapter is the broker's adapter, for deadletter.Config.
	Adapter core.Adapter

	// Choice is the broker chosen and why.
	Choice Choice

	// Address is the broker's location without any password: a host and
	// port, NATS URLs, or the embedded broker's data directory.
	Address string

	// DLQName names the DLQ on the broker, such as "events:dlq" on Redis
	// or "DEADLETTER_DLQ" on NATS.
	DLQName string

	// InspectHint is a command that shows the DLQ, such as
	// "redis-cli XRANGE events:dlq - +", or "" when nothing outlives the
	// process.
	InspectHint string

	// closers run last first on Close.
	closers []func() error
}

// Describe returns one line that names the broker, its address and why it
// was chosen, such as "redis at 127.0.0.1:6379 (REDIS_URL is set)".
func (b *Broker) Describe() string {
	where := b.Choice.Broker
	switch {
	case b.Choice.Broker == BrokerEmbedded:
		where = "embedded NATS server storing in " + b.Address
	case b.Address != "":
		where += " at " + b.Address
	}
	return where + " (" + b.Choice.Reason + ")"
}

// Close closes the adapter, then its connection, then the embedded server
// if one was started.
func (b *Broker) Close() error {
	var errs []error
	for i := len(b.closers) - 1; i >= 0; i-- {
		errs = append(errs, b.closers[i]())
	}
	b.closers = nil
	return errors.Join(errs...)
}

// OpenOption tunes an adapter that Open creates, for programs whose needs
// differ from a service's.
type OpenOption func(*openOptions)

type openOptions struct {
	redisBlock time.Duration
}

// WithRedisBlock sets how long one read of the Redis adapter waits for new
// entries, which also bounds how long closing a subscriber waits. The
// default is redisstream.DefaultBlock (250 ms); a short-lived program such
// as a demo closes sooner with less.
func WithRedisBlock(d time.Duration) OpenOption {
	return func(o *openOptions) { o.redisBlock = d }
}

// Open chooses the broker as Choose does, connects to it and returns its
// adapter. logger receives the adapter's logs; nil means slog.Default().
func Open(ctx context.Context, cfg Config, logger *slog.Logger, options ...OpenOption) (*Broker, error) {
	if logger == nil {
		logger = slog.Default()
	}
	var opts openOptions
	for _, option := range options {
		option(&opts)
	}
	choice := Choose(ctx, cfg)
	if err := cfg.validatePrefix(choice.Broker); err != nil {
		return nil, err
	}

	b := &Broker{Choice: choice}
	var err error
	switch choice.Broker {
	case BrokerRedis:
		err = b.openRedis(cfg, logger, opts)
	case BrokerNATS:
		err = b.openNATS(cfg, logger)
	case BrokerEmbedded:
		err = b.openEmbedded(cfg, logger)
	case BrokerMemory:
		err = b.openMemory(cfg)
	default:
		err = &Error{Origin: cfg.label("broker"), Reason: fmt.Sprintf("%q is not a broker", choice.Broker)}
	}
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	return b, nil
}

func (b *Broker) openRedis(cfg Config, logger *slog.Logger, opts openOptions) error {
	raw := cfg.Redis.URL.Value()
	if raw == "" {
		raw = redisstream.DefaultURL
	}
	clientOpts, err := redis.ParseURL(raw)
	if err != nil {
		// The parser's message may quote the URL, password included.
		return &Error{Origin: cfg.label("redis.url"), Reason: fmt.Sprintf(
			"%s is not a valid Redis URL; use redis://[user:password@]host:port/db or rediss://", ServerURL(raw))}
	}
	if cfg.Redis.Username != "" {
		clientOpts.Username = cfg.Redis.Username
	}
	if cfg.Redis.Password != "" {
		clientOpts.Password = cfg.Redis.Password.Value()
	}
	if cfg.Redis.TLS.enabled() {
		clientOpts.TLSConfig, err = cfg.tlsConfig("redis.tls", cfg.Redis.TLS, clientOpts.TLSConfig)
		if err != nil {
			return err
		}
	}
	// Every running subscription holds a connection while it waits for new
	// entries, as in the adapter's own client.
	clientOpts.PoolSize = max(clientOpts.PoolSize, redisstream.DefaultPoolSize)

	client := redis.NewClient(clientOpts)
	b.closers = append(b.closers, client.Close)
	adapter, err := redisstream.NewAdapter(redisstream.Config{
		Client:    client,
		Prefix:    cfg.Prefix,
		DLQMaxLen: cfg.DLQ.MaxLen,
		Block:     opts.redisBlock,
		Logger:    logger,
	})
	if err != nil {
		return err
	}
	b.closers = append(b.closers, adapter.Close)

	prefix := orDefault(cfg.Prefix, redisstream.DefaultPrefix)
	b.Adapter = adapter
	b.Address = clientOpts.Addr
	b.DLQName = prefix + ":dlq"
	b.InspectHint = redisCLICommand(clientOpts) + " XRANGE " + b.DLQName + " - +"
	return nil
}

// redisCLICommand returns the redis-cli invocation that reaches the server
// and database of opts, naming only what differs from redis-cli's defaults
// and never the password.
func redisCLICommand(opts *redis.Options) string {
	command := "redis-cli"
	if host, port, err := net.SplitHostPort(opts.Addr); err == nil {
		if host != "127.0.0.1" && host != "localhost" {
			command += " -h " + host
		}
		if port != "6379" {
			command += " -p " + port
		}
	}
	if opts.DB != 0 {
		command += " -n " + strconv.Itoa(opts.DB)
	}
	if opts.TLSConfig != nil {
		command += " --tls"
	}
	return command
}

func (b *Broker) openNATS(cfg Config, logger *slog.Logger) error {
	url := orDefault(cfg.NATS.URL.Value(), nats.DefaultURL)
	options := []natsclient.Option{
		natsclient.Name("deadletter"),
		natsclient.MaxReconnects(-1),
		natsclient.Timeout(natsConnectTimeout),
	}
	auth, err := cfg.natsAuth()
	if err != nil {
		return err
	}
	options = append(options, auth...)

	conn, err := natsclient.Connect(url, options...)
	if err != nil {
		return fmt.Errorf("connect to nats at %s: %w", ServerURL(url), err)
	}
	b.closers = append(b.closers, func() error { conn.Close(); return nil })
	if err := b.openNATSAdapter(cfg, conn, logger); err != nil {
		return err
	}

	b.Address = ServerURL(url).String()
	b.InspectHint = "nats stream view " + b.DLQName
	if url != nats.DefaultURL {
		b.InspectHint = "nats --server " + hostOf(strings.Split(url, ",")[0]) + " stream view " + b.DLQName
	}
	return nil
}

// natsAuth returns the client options of the credentials and TLS files.
func (c Config) natsAuth() ([]natsclient.Option, error) {
	n := c.NATS
	var options []natsclient.Option
	switch {
	case n.CredsFile != "":
		options = append(options, natsclient.UserCredentials(n.CredsFile))
	case n.User != "":
		options = append(options, natsclient.UserInfo(n.User, n.Password.Value()))
	case n.Token != "":
		options = append(options, natsclient.Token(n.Token.Value()))
	}
	if n.TLS.enabled() {
		tlsConfig, err := c.tlsConfig("nats.tls", n.TLS, nil)
		if err != nil {
			return nil, err
		}
		options = append(options, natsclient.Secure(tlsConfig))
	}
	return options, nil
}

func (b *Broker) openNATSAdapter(cfg Config, conn *natsclient.Conn, logger *slog.Logger) error {
	adapter, err := nats.NewAdapter(nats.Config{
		Conn:      conn,
		Prefix:    cfg.Prefix,
		DLQMaxLen: cfg.DLQ.MaxLen,
		Logger:    logger,
	})
	if err != nil {
		return err
	}
	b.closers = append(b.closers, adapter.Close)
	b.Adapter = adapter
	b.DLQName = strings.ToUpper(orDefault(cfg.Prefix, nats.DefaultPrefix)) + "_DLQ"
	return nil
}

func (b *Broker) openEmbedded(cfg Config, logger *slog.Logger) error {
	dir := cfg.DataDir
	if dir == "" {
		var err error
		if dir, err = DefaultDataDir(); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory of the embedded broker: %w", err)
	}
	unlock, err := lockDataDir(dir)
	if err != nil {
		return err
	}
	b.closers = append(b.closers, unlock)

	url, shutdown, err := nats.StartEmbedded(dir)
	if err != nil {
		return err
	}
	b.closers = append(b.closers, func() error { shutdown(); return nil })
	conn, err := natsclient.Connect(url, natsclient.Name("deadletter"), natsclient.Timeout(natsConnectTimeout))
	if err != nil {
		return fmt.Errorf("connect to the embedded nats server at %s: %w", url, err)
	}
	b.closers = append(b.closers, func() error { conn.Close(); return nil })
	if err := b.openNATSAdapter(cfg, conn, logger); err != nil {
		return err
	}

	b.Address = dir
	b.InspectHint = "deadletter dlq list --broker embedded"
	if cfg.DataDir != "" {
		b.InspectHint += " --data-dir " + dir
	}
	return nil
}

func (b *Broker) openMemory(cfg Config) error {
	maxLen := cfg.DLQ.MaxLen
	adapter, err := memory.New(memory.Config{DLQMaxLen: int(maxLen)})
	if err != nil {
		return err
	}
	b.closers = append(b.closers, adapter.Close)
	b.Adapter = adapter
	b.DLQName = "memory DLQ"
	return nil
}

func orDefault(value, fallback string) string {
	if value == "" {
		return fallback
	}
	return value
}
