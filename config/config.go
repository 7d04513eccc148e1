package config

import (
	"log/slog"
	"time"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/core"
)

// Broker kinds, the values of the "broker" key.
const (
	// BrokerAuto chooses the broker as Choose describes. It is the default.
	BrokerAuto = "auto"

	// BrokerRedis runs on Redis Streams.
	BrokerRedis = "redis"

	// BrokerNATS runs on a NATS server with JetStream.
	BrokerNATS = "nats"

	// BrokerEmbedded starts a NATS server with JetStream inside the process,
	// storing its streams under Config.DataDir.
	BrokerEmbedded = "embedded"

	// BrokerMemory keeps everything in the process's memory, so nothing
	// survives it. It suits tests and the demo only.
	BrokerMemory = "memory"
)

// Config is the configuration of a deadletter service or command: which
// broker to run on and how to reach it, the retry policies and the
// monitor's settings. The zero value is the default configuration; a field
// left at 0 or "" takes its default. Load fills it from a YAML file,
// environment variables and command-line flags.
type Config struct {
	// Broker is BrokerRedis, BrokerNATS, BrokerEmbedded or BrokerMemory.
	// "" and BrokerAuto choose one as Choose describes.
	Broker string

	// Prefix starts every key, subject and stream name the adapter uses.
	// "" means the adapter's default: "events" on Redis, "deadletter" on
	// NATS.
	Prefix string

	// DataDir is the directory of the embedded broker's streams. ""
	// means DefaultDataDir().
	DataDir string

	// LogLevel is the lowest level of the log lines that the deadletter
	// command prints. The zero value is slog.LevelInfo.
	LogLevel slog.Level

	Redis   RedisConfig
	NATS    NATSConfig
	DLQ     DLQConfig
	Retry   RetryConfig
	Monitor MonitorConfig

	// origins maps each key that was set to where it was set, such as
	// "REDIS_URL" or "--broker", for messages.
	origins map[string]string
}

// RedisConfig is the connection to Redis.
type RedisConfig struct {
	// URL is the server, as redis://[user:password@]host:port/db, or
	// rediss:// for TLS. "" means redis://127.0.0.1:6379/0.
	URL ServerURL

	// Username and Password authenticate with AUTH, in place of those in
	// URL. Username "" means the default user.
	Username string
	Password Secret

	// TLS adds a CA and a client certificate to a rediss:// connection.
	TLS TLSConfig
}

// NATSConfig is the connection to NATS.
type NATSConfig struct {
	// URL is the server, such as nats://127.0.0.1:4222, or several
	// separated by commas; tls:// requires TLS. "" means
	// nats://127.0.0.1:4222.
	URL ServerURL

	// CredsFile is a credentials file holding a user JWT and its NKey seed.
	CredsFile string

	// User and Password authenticate with a user name and password.
	User     string
	Password Secret

	// Token authenticates with a token. At most one of CredsFile,
	// User and Password, and Token may be set.
	Token Secret

	// TLS sets the CA that signs the server's certificate and a client
	// certificate. Setting any of them requires TLS.
	TLS TLSConfig
}

// TLSConfig names PEM files for a TLS connection. Every field is optional,
// but CertFile and KeyFile go together.
type TLSConfig struct {
	// CAFile holds the certificates of the authorities that sign the
	// server's certificate. "" means the system's roots.
	CAFile string

	// CertFile and KeyFile are the client certificate and its private key,
	// for servers that verify clients.
	CertFile string
	KeyFile  string
}

// enabled reports whether any file is set.
func (t TLSConfig) enabled() bool {
	return t.CAFile != "" || t.CertFile != "" || t.KeyFile != ""
}

// DLQConfig sets the dead letter queue's limits.
type DLQConfig struct {
	// MaxLen caps the entries the DLQ keeps; past it the oldest is dropped
	// and counted. 0 means the adapter's default (5,000); -1 means no cap.
	MaxLen int64
}

// RetryConfig holds the retry policies.
type RetryConfig struct {
	// Default is the policy of handlers that have none of their own. Its
	// zero value is core's default: 3 retries after 2 s, 4 s and 8 s.
	Default core.Policy

	// Handlers holds policies by handler name. A field left at 0 takes the
	// value of Default's field.
	Handlers map[string]core.Policy
}

// MonitorConfig holds the monitor's thresholds and alert sinks.
type MonitorConfig struct {
	// Interval is the pause between two checks. 0 means 5 minutes.
	Interval time.Duration

	// Warning and Critical raise an alert when the DLQ holds more entries
	// than this. 0 means 10 and 50; -1 turns the level off.
	Warning  int
	Critical int

	// Capacity is the DLQ's size cap, to warn before entries are dropped.
	// 0 means DLQ.MaxLen, or 5,000 when that is 0; -1 turns the warning
	// off.
	Capacity int64

	// CapacityRatio is the share of Capacity at which the monitor warns. 0
	// means 0.8.
	CapacityRatio float64

	// Window is the number of newest entries counted by handler and event
	// type. 0 means 1,000; -1 counts every entry.
	Window int

	// SlackWebhookURL is a Slack incoming webhook that receives alerts.
	SlackWebhookURL Secret

	// PagerDutyRoutingKey is a PagerDuty Events API v2 routing key.
	PagerDutyRoutingKey Secret

	// PagerDutyURL is the PagerDuty Events API endpoint. "" means
	// monitor.DefaultPagerDutyURL.
	PagerDutyURL string

	// PagerDutyLevel is the lowest alert level that pages: "warning" or
	// "critical". "" means "critical".
	PagerDutyLevel string

	// WebhookURL receives each alert as JSON.
	WebhookURL Secret
}

// Policy returns the retry policy of a handler: its own policy from
// Retry.Handlers, with each field left at 0 taken from Retry.Default.
func (c Config) Policy(handler string) core.Policy {
	p, ok := c.Retry.Handlers[handler]
	if !ok {
		return c.Retry.Default
	}
	d := c.Retry.Default
	if p.MaxRetries == 0 {
		p.MaxRetries = d.MaxRetries
	}
	if p.Initial == 0 {
		p.Initial = d.Initial
	}
	if p.Multiplier == 0 {
		p.Multiplier = d.Multiplier
	}
	if p.MaxInterval == 0 {
		p.MaxInterval = d.MaxInterval
	}
	if p.Jitter == 0 {
		p.Jitter = d.Jitter
	}
	if p.Timeout == 0 {
		p.Timeout = d.Timeout
	}
	return p
}

// HandlerOptions returns the options that give a handler its configured
// policy, for deadletter.Bus.Handle. It returns none for a handler without
// a policy of its own, which then runs with the bus's default policy.
func (c Config) HandlerOptions(handler string) []deadletter.HandlerOption {
	if _, ok := c.Retry.Handlers[handler]; !ok {
		return nil
	}
	return []deadletter.HandlerOption{deadletter.WithPolicy(c.Policy(handler))}
}

// BusConfig returns the configuration of a bus on adapter with the default
// retry policy.
func (c Config) BusConfig(adapter core.Adapter, logger *slog.Logger) deadletter.Config {
	return deadletter.Config{Adapter: adapter, Policy: c.Retry.Default, Logger: logger}
}

// Origin returns where key was set, such as "REDIS_URL", "--broker" or
// "broker in deadletter.yaml", and "" when it was not set.
func (c Config) Origin(key string) string {
	return c.origins[key]
}

// setOrigin records where key was set.
func (c *Config) setOrigin(key, origin string) {
	if c.origins == nil {
		c.origins = map[string]string{}
	}
	c.origins[key] = origin
}
