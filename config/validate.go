package config

import (
	"fmt"
	"net/url"
	"regexp"

	"github.com/deadletter/deadletter/adapters/redisstream"
	"github.com/deadletter/deadletter/monitor"
)

// natsPrefixPattern is the NATS adapter's rule for prefixes: one subject
// token that is also valid in stream names.
var natsPrefixPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// validate checks the rules that span several keys. Each message names the
// key, flag or environment variable that set the value it rejects.
func (c Config) validate() error {
	checks := []func() error{
		func() error { return c.validatePrefix(c.Broker) },
		c.validateRedisTLS,
		c.validateNATSAuth,
		func() error { return c.validateTLSPair("nats.tls", c.NATS.TLS) },
		c.validateThresholds,
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// validatePrefix checks the prefix against the rules of the broker's
// adapter; Open calls it again once the broker is chosen.
func (c Config) validatePrefix(broker string) error {
	if c.Prefix == "" || (broker != BrokerNATS && broker != BrokerEmbedded) {
		return nil
	}
	if !natsPrefixPattern.MatchString(c.Prefix) {
		return &Error{Origin: c.label("prefix"), Reason: fmt.Sprintf(
			"%q is not allowed on NATS; use 1 to 64 letters, digits, '_' or '-'", c.Prefix)}
	}
	return nil
}

func (c Config) validateRedisTLS() error {
	if err := c.validateTLSPair("redis.tls", c.Redis.TLS); err != nil {
		return err
	}
	if !c.Redis.TLS.enabled() {
		return nil
	}
	raw := c.Redis.URL.Value()
	if raw == "" {
		raw = redisstream.DefaultURL
	}
	if parsed, err := url.Parse(raw); err == nil && parsed.Scheme == "rediss" {
		return nil
	}
	key := "redis.tls.ca_file"
	if c.Redis.TLS.CAFile == "" {
		key = "redis.tls.cert_file"
	}
	return &Error{Origin: c.label(key), Reason: fmt.Sprintf(
		"TLS needs a rediss:// URL, but %s is %s", c.label("redis.url"), ServerURL(raw))}
}

// validateTLSPair checks that a client certificate comes with its key.
func (c Config) validateTLSPair(section string, t TLSConfig) error {
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		return &Error{Origin: c.label(section + ".cert_file"), Reason: "set " + section + ".key_file too"}
	case t.KeyFile != "" && t.CertFile == "":
		return &Error{Origin: c.label(section + ".key_file"), Reason: "set " + section + ".cert_file too"}
	}
	return nil
}

func (c Config) validateNATSAuth() error {
	n := c.NATS
	switch {
	case n.User != "" && n.Password == "":
		return &Error{Origin: c.label("nats.user"), Reason: "set nats.password too"}
	case n.Password != "" && n.User == "":
		return &Error{Origin: c.label("nats.password"), Reason: "set nats.user too"}
	}

	var methods []string
	if n.CredsFile != "" {
		methods = append(methods, "nats.creds_file")
	}
	if n.User != "" {
		methods = append(methods, "nats.user")
	}
	if n.Token != "" {
		methods = append(methods, "nats.token")
	}
	if len(methods) > 1 {
		return &Error{Origin: c.label(methods[1]), Reason: fmt.Sprintf(
			"%s is set too; use one of nats.creds_file, nats.user with nats.password, or nats.token",
			c.label(methods[0]))}
	}
	return nil
}

// validateThresholds checks that the warning comes before the critical
// alert, counting defaults.
func (c Config) validateThresholds() error {
	warning, critical := c.Monitor.Warning, c.Monitor.Critical
	if warning == 0 {
		warning = monitor.DefaultWarningThreshold
	}
	if critical == 0 {
		critical = monitor.DefaultCriticalThreshold
	}
	if warning <= 0 || critical <= 0 || warning < critical {
		return nil
	}
	return &Error{Origin: c.label("monitor.warning"), Reason: fmt.Sprintf(
		"%d must be below %s (%d%s); raise the critical threshold or turn one off with -1",
		warning, c.label("monitor.critical"), critical, defaultNote(c.Monitor.Critical == 0))}
}

func defaultNote(isDefault bool) string {
	if isDefault {
		return ", the default"
	}
	return ""
}
