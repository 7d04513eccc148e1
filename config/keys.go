package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/deadletter/deadletter/core"
)

// Key describes one configuration key: its name in the YAML file, its
// environment variable and its command-line flag.
type Key struct {
	// Name is the key's dotted path in the file, such as "retry.initial".
	Name string

	// Env is the environment variable that sets the key, or "".
	Env string

	// Flag is the flag that sets the key, without its dashes, or "".
	// Passwords and tokens have no flag, since flags show in the process
	// list.
	Flag string

	// Type names the kind of value for help text: "string", "duration",
	// "int", "float", "url", "file" or "secret".
	Type string

	// Default is the default as help text shows it; "" shows none.
	Default string

	// Usage describes what the key sets, for help text.
	Usage string

	// Secret hides the value in help text and messages.
	Secret bool

	set func(c *Config, v string) error
}

// handlerNamePattern is the rule of deadletter.Bus.Handle for handler
// names.
var handlerNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// handlerKeyPrefix starts the keys of per-handler policies:
// retry.handlers.<handler>.<field>.
const handlerKeyPrefix = "retry.handlers."

// policyFields are the fields of a retry policy, under retry. and under
// retry.handlers.<handler>.
var policyFields = []struct {
	name, typ, def, usage string
	set                   func(*core.Policy, string) error
}{
	{"max_retries", "int", "3", "retries after the first attempt; -1 means none", setMaxRetries},
	{"initial", "duration", "2s", "pause before the first retry", setInitial},
	{"multiplier", "float", "2", "factor that grows each pause from the one before", setMultiplier},
	{"max_interval", "duration", "1h", "cap on any single pause; -1 means no cap", setMaxInterval},
	{"jitter", "float", "0", "fraction by which each pause is spread at random either way", setJitter},
	{"timeout", "duration", "0", "bound on one attempt of the handler; 0 means none", setTimeout},
}

// keys lists every fixed key, in the order of the documentation.
var keys = buildKeys()

func buildKeys() []Key {
	list := []Key{
		{Name: "broker", Env: "DEADLETTER_BROKER", Flag: "broker", Type: "string", Default: "auto",
			Usage: "broker to run on: redis, nats, embedded, memory, or auto to choose",
			set: func(c *Config, v string) (err error) {
				c.Broker, err = parseBroker(v)
				return err
			}},
		{Name: "prefix", Env: "DEADLETTER_PREFIX", Flag: "prefix", Type: "string",
			Usage: `prefix of every key, subject and stream (default "events" on Redis, "deadletter" on NATS)`,
			set: func(c *Config, v string) (err error) {
				c.Prefix, err = parsePrefix(v)
				return err
			}},
		{Name: "data_dir", Env: "DEADLETTER_DATA_DIR", Flag: "data-dir", Type: "string",
			Usage: "directory of the embedded broker's streams (default $XDG_DATA_HOME/deadletter)",
			set: func(c *Config, v string) (err error) {
				c.DataDir, err = parseDir(v)
				return err
			}},
		{Name: "log_level", Env: "DEADLETTER_LOG_LEVEL", Flag: "log-level", Type: "string", Default: "info",
			Usage: "lowest level of log lines on stderr: debug, info, warn or error",
			set: func(c *Config, v string) (err error) {
				c.LogLevel, err = parseLevel(v)
				return err
			}},

		{Name: "redis.url", Env: "REDIS_URL", Flag: "redis-url", Type: "url", Default: "redis://127.0.0.1:6379/0",
			Usage: "Redis server, as redis://[user:password@]host:port/db, or rediss:// for TLS",
			set: func(c *Config, v string) (err error) {
				c.Redis.URL, err = parseServerURL(v, []string{"redis", "rediss"}, "redis://127.0.0.1:6379/0")
				return err
			}},
		{Name: "redis.username", Env: "REDIS_USERNAME", Flag: "redis-username", Type: "string",
			Usage: "Redis ACL user name, in place of the URL's",
			set:   func(c *Config, v string) error { c.Redis.Username = v; return nil }},
		{Name: "redis.password", Env: "REDIS_PASSWORD", Type: "secret", Secret: true,
			Usage: "Redis password, in place of the URL's",
			set:   func(c *Config, v string) error { c.Redis.Password = Secret(v); return nil }},
		fileKey("redis.tls.ca_file", "REDIS_TLS_CA", "redis-tls-ca",
			"PEM file of the CAs that sign the Redis server's certificate",
			func(c *Config) *string { return &c.Redis.TLS.CAFile }),
		fileKey("redis.tls.cert_file", "REDIS_TLS_CERT", "redis-tls-cert", "PEM file of the Redis client certificate",
			func(c *Config) *string { return &c.Redis.TLS.CertFile }),
		fileKey("redis.tls.key_file", "REDIS_TLS_KEY", "redis-tls-key", "PEM file of the Redis client key",
			func(c *Config) *string { return &c.Redis.TLS.KeyFile }),

		{Name: "nats.url", Env: "NATS_URL", Flag: "nats-url", Type: "url", Default: "nats://127.0.0.1:4222",
			Usage: "NATS servers, comma-separated; tls:// requires TLS",
			set: func(c *Config, v string) (err error) {
				c.NATS.URL, err = parseServerURL(v, []string{"nats", "tls", "ws", "wss"}, "nats://127.0.0.1:4222")
				return err
			}},
		fileKey("nats.creds_file", "NATS_CREDS", "nats-creds", "NATS credentials file (user JWT and NKey seed)",
			func(c *Config) *string { return &c.NATS.CredsFile }),
		{Name: "nats.user", Env: "NATS_USER", Flag: "nats-user", Type: "string",
			Usage: "NATS user name; set its password in NATS_PASSWORD",
			set:   func(c *Config, v string) error { c.NATS.User = v; return nil }},
		{Name: "nats.password", Env: "NATS_PASSWORD", Type: "secret", Secret: true,
			Usage: "NATS password, with nats.user",
			set:   func(c *Config, v string) error { c.NATS.Password = Secret(v); return nil }},
		{Name: "nats.token", Env: "NATS_TOKEN", Type: "secret", Secret: true,
			Usage: "NATS authentication token",
			set:   func(c *Config, v string) error { c.NATS.Token = Secret(v); return nil }},
		fileKey("nats.tls.ca_file", "NATS_CA", "nats-tls-ca", "PEM file of the CAs that sign the NATS server's certificate",
			func(c *Config) *string { return &c.NATS.TLS.CAFile }),
		fileKey("nats.tls.cert_file", "NATS_CERT", "nats-tls-cert", "PEM file of the NATS client certificate",
			func(c *Config) *string { return &c.NATS.TLS.CertFile }),
		fileKey("nats.tls.key_file", "NATS_KEY", "nats-tls-key", "PEM file of the NATS client key",
			func(c *Config) *string { return &c.NATS.TLS.KeyFile }),

		{Name: "dlq.max_len", Env: "DEADLETTER_DLQ_MAX_LEN", Flag: "dlq-max-len", Type: "int", Default: "5000",
			Usage: "entries the DLQ keeps before it drops the oldest; -1 means no cap",
			set: func(c *Config, v string) (err error) {
				c.DLQ.MaxLen, err = parseCount(v, "no cap")
				return err
			}},
	}

	for _, f := range policyFields {
		set := f.set
		list = append(list, Key{
			Name: "retry." + f.name, Env: "DEADLETTER_RETRY_" + strings.ToUpper(f.name), Type: f.typ,
			Default: f.def, Usage: "default retry policy: " + f.usage,
			set: func(c *Config, v string) error { return set(&c.Retry.Default, v) },
		})
	}
	return append(list, monitorKeys()...)
}

func monitorKeys() []Key {
	return []Key{
		{Name: "monitor.interval", Env: "DEADLETTER_MONITOR_INTERVAL", Flag: "interval", Type: "duration",
			Default: "5m", Usage: "pause between two checks of the DLQ",
			set: func(c *Config, v string) error {
				d, err := parseNonNegativeDuration(v)
				c.Monitor.Interval = d
				return err
			}},
		countKey("monitor.warning", "DEADLETTER_MONITOR_WARNING", "warning", "10",
			"warn above this many entries; -1 turns it off", "off",
			func(c *Config, n int64) { c.Monitor.Warning = int(n) }),
		countKey("monitor.critical", "DEADLETTER_MONITOR_CRITICAL", "critical", "50",
			"raise a critical alert above this many entries; -1 turns it off", "off",
			func(c *Config, n int64) { c.Monitor.Critical = int(n) }),
		countKey("monitor.capacity", "DEADLETTER_MONITOR_CAPACITY", "capacity", "dlq.max_len",
			"the DLQ's size cap, to warn before entries are dropped; -1 turns it off", "off",
			func(c *Config, n int64) { c.Monitor.Capacity = n }),
		{Name: "monitor.capacity_ratio", Env: "DEADLETTER_MONITOR_CAPACITY_RATIO", Flag: "capacity-ratio",
			Type: "float", Default: "0.8", Usage: "share of the capacity at which to warn",
			set: func(c *Config, v string) error {
				f, err := parseFloat(v)
				if err != nil || f < 0 || f > 1 {
					return fmt.Errorf("%q is not allowed; use a fraction above 0 and at most 1, such as 0.8", v)
				}
				c.Monitor.CapacityRatio = f
				return nil
			}},
		countKey("monitor.window", "DEADLETTER_MONITOR_WINDOW", "window", "1000",
			"newest entries counted by handler and event type; -1 counts every entry", "every entry",
			func(c *Config, n int64) { c.Monitor.Window = int(n) }),
		webhookKey("monitor.slack_webhook_url", "DEADLETTER_SLACK_WEBHOOK_URL", "slack-webhook-url",
			"Slack incoming webhook for alerts", func(c *Config) *Secret { return &c.Monitor.SlackWebhookURL }),
		{Name: "monitor.pagerduty_routing_key", Env: "DEADLETTER_PAGERDUTY_ROUTING_KEY",
			Flag: "pagerduty-routing-key", Type: "secret", Secret: true,
			Usage: "PagerDuty Events API v2 routing key",
			set:   func(c *Config, v string) error { c.Monitor.PagerDutyRoutingKey = Secret(v); return nil }},
		{Name: "monitor.pagerduty_url", Env: "DEADLETTER_PAGERDUTY_URL", Flag: "pagerduty-url", Type: "url",
			Default: "https://events.pagerduty.com/v2/enqueue", Usage: "PagerDuty Events API endpoint",
			set: func(c *Config, v string) error {
				u, err := parseServerURL(v, []string{"http", "https"}, "https://events.pagerduty.com/v2/enqueue")
				c.Monitor.PagerDutyURL = string(u)
				return err
			}},
		{Name: "monitor.pagerduty_level", Env: "DEADLETTER_PAGERDUTY_LEVEL", Flag: "pagerduty-level",
			Type: "string", Default: "critical", Usage: "lowest alert level that pages: warning or critical",
			set: func(c *Config, v string) (err error) {
				c.Monitor.PagerDutyLevel, err = parsePagerDutyLevel(v)
				return err
			}},
		webhookKey("monitor.webhook_url", "DEADLETTER_WEBHOOK_URL", "webhook-url",
			"URL that receives each alert as JSON", func(c *Config) *Secret { return &c.Monitor.WebhookURL }),
	}
}

func fileKey(name, env, flag, usage string, field func(*Config) *string) Key {
	return Key{Name: name, Env: env, Flag: flag, Type: "file", Usage: usage,
		set: func(c *Config, v string) (err error) {
			*field(c), err = parseFile(v)
			return err
		}}
}

func countKey(name, env, flag, def, usage, minusOne string, set func(*Config, int64)) Key {
	return Key{Name: name, Env: env, Flag: flag, Type: "int", Default: def, Usage: usage,
		set: func(c *Config, v string) error {
			n, err := parseCount(v, minusOne)
			set(c, n)
			return err
		}}
}

func webhookKey(name, env, flag, usage string, field func(*Config) *Secret) Key {
	return Key{Name: name, Env: env, Flag: flag, Type: "secret", Secret: true, Usage: usage,
		set: func(c *Config, v string) (err error) {
			*field(c), err = parseWebhookURL(v)
			return err
		}}
}

// Keys returns every fixed key. The per-handler policy keys,
// retry.handlers.<handler>.<field>, take the fields of retry.<field> and are
// set in the file only.
func Keys() []Key {
	return slices.Clone(keys)
}

// lookupKey returns the key of a name, including per-handler policy keys.
func lookupKey(name string) (Key, error) {
	for _, k := range keys {
		if k.Name == name {
			return k, nil
		}
	}
	if rest, ok := strings.CutPrefix(name, handlerKeyPrefix); ok {
		return handlerKey(name, rest)
	}
	return Key{}, unknownKeyError(name)
}

// handlerKey returns the key retry.handlers.<handler>.<field>.
func handlerKey(name, rest string) (Key, error) {
	handler, field, ok := strings.Cut(rest, ".")
	if !ok || handler == "" {
		return Key{}, fmt.Errorf("unknown key %q; per-handler policies are retry.handlers.<handler>.<field>", name)
	}
	if !handlerNamePattern.MatchString(handler) {
		return Key{}, fmt.Errorf("handler name %q in %q must be 1 to 128 letters, digits, '_' or '-'",
			handler, name)
	}
	for _, f := range policyFields {
		if f.name != field {
			continue
		}
		set := f.set
		return Key{Name: name, Type: f.typ, set: func(c *Config, v string) error {
			if c.Retry.Handlers == nil {
				c.Retry.Handlers = map[string]core.Policy{}
			}
			p := c.Retry.Handlers[handler]
			err := set(&p, v)
			c.Retry.Handlers[handler] = p
			return err
		}}, nil
	}
	return Key{}, fmt.Errorf("unknown key %q; a policy has %s", name, policyFieldNames())
}

// unknownKeyError names the keys known under the unknown key's parent.
func unknownKeyError(name string) error {
	parent := ""
	if i := strings.LastIndex(name, "."); i >= 0 {
		parent = name[:i+1]
	}
	var siblings []string
	for _, k := range keys {
		if rest, ok := strings.CutPrefix(k.Name, parent); ok && parent != "" {
			siblings = append(siblings, strings.SplitN(rest, ".", 2)[0])
		}
	}
	if parent == "retry." {
		siblings = append(siblings, "handlers")
	}
	siblings = slices.Compact(siblings)
	if len(siblings) == 0 {
		return fmt.Errorf("unknown key %q; top-level keys are %s", name, topLevelKeys())
	}
	return fmt.Errorf("unknown key %q; keys under %s are %s", name, strings.TrimSuffix(parent, "."),
		strings.Join(siblings, ", "))
}

func topLevelKeys() string {
	var names []string
	for _, k := range keys {
		names = append(names, strings.SplitN(k.Name, ".", 2)[0])
	}
	return strings.Join(slices.Compact(names), ", ")
}

func policyFieldNames() string {
	names := make([]string, len(policyFields))
	for i, f := range policyFields {
		names[i] = f.name
	}
	return strings.Join(names, ", ")
}

// isSection reports whether name is a mapping of keys, such as "redis" or
// "retry.handlers.send_email".
func isSection(name string) bool {
	if name == "retry.handlers" {
		return true
	}
	if rest, ok := strings.CutPrefix(name, handlerKeyPrefix); ok {
		return !strings.Contains(rest, ".")
	}
	for _, k := range keys {
		if strings.HasPrefix(k.Name, name+".") {
			return true
		}
	}
	return false
}
