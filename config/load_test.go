package config

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/core"
)

// env returns a LookupEnv over vars only, so that the machine's own
// environment never leaks into a test.
func env(vars map[string]string) func(string) (string, bool) {
	return func(key string) (string, bool) {
		v, ok := vars[key]
		return v, ok
	}
}

// writeFile writes a YAML file in a fresh directory and returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "deadletter.yaml")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// load reads a file and environment, with flags, and fails on error.
func load(t *testing.T, file string, vars map[string]string, flags ...Setting) Config {
	t.Helper()
	cfg, err := Load(Sources{File: file, LookupEnv: env(vars), Flags: flags})
	require.NoError(t, err)
	return cfg
}

const fullFile = `
broker: nats
prefix: hospital
data_dir: /var/lib/deadletter
log_level: debug
redis:
  url: rediss://cache.internal:6380/2
  username: app
nats:
  url: nats://a.internal:4222, nats://b.internal:4222
dlq:
  max_len: 20000
retry:
  max_retries: 5
  initial: 1s
  multiplier: 3
  max_interval: 10m
  jitter: 0.1
  timeout: 30s
  handlers:
    send_email:
      max_retries: 4
      initial: 15m
    write_db:
      max_interval: -1
monitor:
  interval: 1m
  warning: 5
  critical: 20
  capacity: 15000
  capacity_ratio: 0.9
  window: 500
  pagerduty_level: warning
`

func TestLoadFile(t *testing.T) {
	cfg := load(t, writeFile(t, fullFile), nil)

	require.Equal(t, BrokerNATS, cfg.Broker)
	require.Equal(t, "hospital", cfg.Prefix)
	require.Equal(t, "/var/lib/deadletter", cfg.DataDir)
	require.Equal(t, slog.LevelDebug, cfg.LogLevel)
	require.Equal(t, ServerURL("rediss://cache.internal:6380/2"), cfg.Redis.URL)
	require.Equal(t, "app", cfg.Redis.Username)
	require.Equal(t, "nats://a.internal:4222, nats://b.internal:4222", cfg.NATS.URL.Value())
	require.EqualValues(t, 20000, cfg.DLQ.MaxLen)

	require.Equal(t, core.Policy{MaxRetries: 5, Initial: time.Second, Multiplier: 3, MaxInterval: 10 * time.Minute,
		Jitter: 0.1, Timeout: 30 * time.Second}, cfg.Retry.Default)
	require.Equal(t, core.Policy{MaxRetries: 4, Initial: 15 * time.Minute, Multiplier: 3,
		MaxInterval: 10 * time.Minute, Jitter: 0.1, Timeout: 30 * time.Second}, cfg.Policy("send_email"),
		"a handler's policy takes the fields it leaves out from the default")
	require.Equal(t, time.Duration(-1), cfg.Policy("write_db").MaxInterval, "-1 turns the cap off")
	require.Equal(t, cfg.Retry.Default, cfg.Policy("index_patient"), "a handler without a policy gets the default")
	require.Len(t, cfg.HandlerOptions("send_email"), 1)
	require.Empty(t, cfg.HandlerOptions("index_patient"))

	require.Equal(t, MonitorConfig{Interval: time.Minute, Warning: 5, Critical: 20, Capacity: 15000,
		CapacityRatio: 0.9, Window: 500, PagerDutyLevel: "warning"}, cfg.Monitor)
	require.Equal(t, "retry.initial in deadletter.yaml", cfg.Origin("retry.initial"))
}

func TestLoadDefaults(t *testing.T) {
	cfg := load(t, "", nil)
	require.Empty(t, cfg.Broker, "no broker means auto")
	require.Equal(t, core.Policy{}, cfg.Retry.Default, "the zero policy is core's default")
	require.Equal(t, MonitorConfig{}, cfg.Monitor)
	require.Empty(t, cfg.Origin("broker"))

	t.Run("EmptyFileIsDefault", func(t *testing.T) {
		require.Equal(t, Config{origins: map[string]string{}}, load(t, writeFile(t, "# nothing yet\n"), nil))
	})
	t.Run("NullValueIsDefault", func(t *testing.T) {
		cfg := load(t, writeFile(t, "broker:\nretry:\n  initial: ~\n"), nil)
		require.Empty(t, cfg.Broker)
		require.Zero(t, cfg.Retry.Default.Initial)
	})
	t.Run("FileNamedByEnv", func(t *testing.T) {
		path := writeFile(t, "broker: memory\n")
		cfg := load(t, "", map[string]string{"DEADLETTER_CONFIG": path})
		require.Equal(t, BrokerMemory, cfg.Broker)
	})
}

func TestLoadPrecedence(t *testing.T) {
	file := writeFile(t, "broker: redis\nprefix: from-file\nretry:\n  initial: 1s\n  timeout: 9s\n"+
		"monitor:\n  interval: 1m\n")
	vars := map[string]string{
		"DEADLETTER_BROKER":           "nats",
		"DEADLETTER_RETRY_INITIAL":    "3s",
		"DEADLETTER_MONITOR_INTERVAL": "2m",
		"DEADLETTER_PREFIX":           "",
	}
	cfg := load(t, file, vars,
		Setting{Key: "broker", Value: "embedded", Origin: "--broker"},
		Setting{Key: "monitor.interval", Value: "3m", Origin: "--interval"})

	require.Equal(t, BrokerEmbedded, cfg.Broker, "a flag beats the environment and the file")
	require.Equal(t, "--broker", cfg.Origin("broker"))
	require.Equal(t, 3*time.Minute, cfg.Monitor.Interval, "a flag beats the environment and the file")
	require.Equal(t, 3*time.Second, cfg.Retry.Default.Initial, "the environment beats the file")
	require.Equal(t, "DEADLETTER_RETRY_INITIAL", cfg.Origin("retry.initial"))
	require.Equal(t, 9*time.Second, cfg.Retry.Default.Timeout, "the file beats the default")
	require.Equal(t, "from-file", cfg.Prefix, "an empty variable counts as not set")
}

func TestLoadRejects(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, []byte("not a pem"), 0o600))

	cases := []struct {
		name, file string
		vars       map[string]string
		flags      []Setting
		message    string
	}{
		{name: "HandlerDuration", file: "retry:\n  handlers:\n    send_email:\n      initial: 2x\n",
			message: `config: retry.handlers.send_email.initial: "2x" is not a duration (example: 2s)`},
		{name: "DurationWithoutUnit", vars: map[string]string{"DEADLETTER_RETRY_INITIAL": "2"},
			message: `config: DEADLETTER_RETRY_INITIAL: "2" is not a duration (example: 2s)`},
		{name: "NegativeDuration", file: "retry:\n  timeout: -1s\n",
			message: `config: retry.timeout: "-1s" is negative; use a positive duration or 0 for the default`},
		{name: "MaxInterval", file: "retry:\n  max_interval: soon\n",
			message: `config: retry.max_interval: "soon" is not a duration (example: 1h), nor -1 for no cap`},
		{name: "MaxRetries", file: "retry:\n  max_retries: -2\n",
			message: `config: retry.max_retries: "-2" is not allowed; use a positive count, 0 for the default (3) or -1 for no retries`},
		{name: "Multiplier", file: "retry:\n  multiplier: 0.5\n",
			message: `config: retry.multiplier: "0.5" is not allowed; use a number of 1 or more, or 0 for the default (2)`},
		{name: "Jitter", file: "retry:\n  jitter: 1\n",
			message: `config: retry.jitter: "1" is not allowed; use a fraction of at least 0 and below 1, such as 0.2`},
		{name: "Broker", vars: map[string]string{"DEADLETTER_BROKER": "rabbitmq"},
			message: `config: DEADLETTER_BROKER: "rabbitmq" is not a broker; use redis, nats, embedded, memory or auto`},
		{name: "LogLevel", flags: []Setting{{Key: "log_level", Value: "loud", Origin: "--log-level"}},
			message: `config: --log-level: "loud" is not a log level; use debug, info, warn or error`},
		{name: "PrefixSpace", file: "prefix: my events\n",
			message: `config: prefix: "my events" contains a space; use letters, digits, '_', '-' or ':'`},
		{name: "PrefixOnNATS", file: "broker: nats\nprefix: app:events\n",
			message: `config: prefix in deadletter.yaml: "app:events" is not allowed on NATS; use 1 to 64 letters, digits, '_' or '-'`},
		{name: "DLQMaxLen", vars: map[string]string{"DEADLETTER_DLQ_MAX_LEN": "lots"},
			message: `config: DEADLETTER_DLQ_MAX_LEN: "lots" is not a whole number; use a positive count, 0 for the default or -1 for no cap`},
		{name: "DLQMaxLenRange", file: "dlq:\n  max_len: -5\n",
			message: `config: dlq.max_len: -5 is out of range; use a positive count, 0 for the default or -1 for no cap`},
		{name: "MonitorWindow", flags: []Setting{{Key: "monitor.window", Value: "-3", Origin: "--window"}},
			message: `config: --window: -3 is out of range; use a positive count, 0 for the default or -1 for every entry`},
		{name: "CapacityRatio", file: "monitor:\n  capacity_ratio: 80\n",
			message: `config: monitor.capacity_ratio: "80" is not allowed; use a fraction above 0 and at most 1, such as 0.8`},
		{name: "PagerDutyLevel", file: "monitor:\n  pagerduty_level: info\n",
			message: `config: monitor.pagerduty_level: "info" is not an alert level; use warning or critical`},
		{name: "WarningAboveCritical", vars: map[string]string{"DEADLETTER_MONITOR_WARNING": "60"},
			message: `config: DEADLETTER_MONITOR_WARNING: 60 must be below monitor.critical (50, the default); raise the critical threshold or turn one off with -1`},
		{name: "RedisScheme", vars: map[string]string{"REDIS_URL": "http://127.0.0.1:6379"},
			message: `config: REDIS_URL: "http://127.0.0.1:6379" has scheme "http"; use redis:// or rediss:// (example: redis://127.0.0.1:6379/0)`},
		{name: "NATSScheme", file: "nats:\n  url: nats://a:4222,redis://b:6379\n",
			message: `config: nats.url: "redis://b:6379" has scheme "redis"; use nats://, tls://, ws:// or wss:// (example: nats://127.0.0.1:4222)`},
		{name: "NotAURL", vars: map[string]string{"NATS_URL": "127.0.0.1"},
			message: `config: NATS_URL: the value is not a URL (not shown, since it may hold a password); example: nats://127.0.0.1:4222`},
		{name: "MissingFile", vars: map[string]string{"NATS_CA": "/nonexistent/ca.pem"},
			message: `config: NATS_CA: file "/nonexistent/ca.pem" does not exist`},
		{name: "CertWithoutKey", file: "nats:\n  tls:\n    cert_file: " + caFile + "\n",
			message: `config: nats.tls.cert_file in deadletter.yaml: set nats.tls.key_file too`},
		{name: "RedisTLSWithoutRediss", vars: map[string]string{"REDIS_TLS_CA": caFile},
			message: `config: REDIS_TLS_CA: TLS needs a rediss:// URL, but redis.url is redis://127.0.0.1:6379/0`},
		{name: "UserWithoutPassword", vars: map[string]string{"NATS_USER": "app"},
			message: `config: NATS_USER: set nats.password too`},
		{name: "TwoNATSAuthMethods", vars: map[string]string{"NATS_USER": "app", "NATS_PASSWORD": "pw",
			"NATS_TOKEN": "tok"},
			message: `config: NATS_TOKEN: NATS_USER is set too; use one of nats.creds_file, nats.user with nats.password, or nats.token`},
		{name: "WebhookURL", vars: map[string]string{"DEADLETTER_WEBHOOK_URL": "hooks.internal/alert"},
			message: `config: DEADLETTER_WEBHOOK_URL: the value is not an http:// or https:// URL (not shown, since it is a secret)`},
		{name: "UnknownKey", file: "retry:\n  max_retry: 3\n",
			message: `config: retry.max_retry: unknown key "retry.max_retry"; keys under retry are max_retries, initial, multiplier, max_interval, jitter, timeout, handlers`},
		{name: "UnknownTopLevelKey", file: "brokers: redis\n",
			message: `config: brokers: unknown key "brokers"; top-level keys are broker, prefix, data_dir, log_level, redis, nats, dlq, retry, monitor`},
		{name: "UnknownKeyWithoutValue", file: "redis:\n  adress:\n",
			message: `config: redis.adress: unknown key "redis.adress"; keys under redis are url, username, password, tls`},
		{name: "UnknownPolicyField", file: "retry:\n  handlers:\n    send_email:\n      retries: 3\n",
			message: `config: retry.handlers.send_email.retries: unknown key "retry.handlers.send_email.retries"; a policy has max_retries, initial, multiplier, max_interval, jitter, timeout`},
		{name: "BadHandlerName", file: "retry:\n  handlers:\n    send email:\n      max_retries: 3\n",
			message: `config: retry.handlers.send email.max_retries: handler name "send email" in "retry.handlers.send email.max_retries" must be 1 to 128 letters, digits, '_' or '-'`},
		{name: "UnknownFlagKey", flags: []Setting{{Key: "redis.adress", Value: "x", Origin: "--redis-adress"}},
			message: `config: --redis-adress: unknown key "redis.adress"; keys under redis are url, username, password, tls`},
		{name: "ValueForSection", file: "redis: redis://127.0.0.1:6379\n",
			message: `config: redis: line 1: expected a mapping of keys, not a value`},
		{name: "MappingForValue", file: "broker:\n  kind: redis\n",
			message: `config: broker: line 2: expected a value, not a mapping`},
		{name: "List", file: "nats:\n  url:\n    - nats://a:4222\n",
			message: `config: nats.url: line 3: expected one value, not a list (separate several NATS servers with commas)`},
		{name: "DuplicateKey", file: "broker: redis\nbroker: nats\n",
			message: `config: broker: line 2: the key appears twice`},
		{name: "NotAMapping", file: "- broker\n",
			message: `line 1: the file must be a mapping of keys, such as broker: redis`},
		{name: "InvalidYAML", file: "broker: [redis\n",
			message: `invalid YAML: line 1: did not find expected ',' or ']'`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := ""
			if c.file != "" {
				file = writeFile(t, c.file)
			}
			_, err := Load(Sources{File: file, LookupEnv: env(c.vars), Flags: c.flags})
			require.Error(t, err)
			require.ErrorIs(t, err, core.ErrInvalidConfig)
			require.NotContains(t, err.Error(), "\n", "one line")
			if c.name == "NotAMapping" || c.name == "InvalidYAML" {
				require.Equal(t, "config: "+file+": "+c.message, err.Error())
				return
			}
			require.Equal(t, c.message, err.Error())
			var cfgErr *Error
			require.True(t, errors.As(err, &cfgErr), "the error is a *config.Error")
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(Sources{File: "/nonexistent/deadletter.yaml", LookupEnv: env(nil)})
	require.ErrorIs(t, err, core.ErrInvalidConfig)
	require.Equal(t, "config: /nonexistent/deadletter.yaml: cannot be read: no such file or directory",
		err.Error())
}
