package config

import (
	"log/slog"
	"net/url"
	"strings"

	"github.com/deadletter/deadletter/internal/redact"
)

// redacted replaces a secret in printed values.
const redacted = redact.Placeholder

// Secret is a password, token or webhook URL. It prints as "[redacted]" with
// fmt, log/slog and encoding/json, so that a Config can be printed or
// logged whole; Value returns the secret itself.
type Secret string

// Value returns the secret itself, for the client that sends it.
func (s Secret) Value() string { return string(s) }

// String returns "[redacted]", or "" when the secret is not set.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the secret.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// LogValue keeps log/slog from printing the secret.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText keeps encoding/json and other encoders from printing the
// secret.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ServerURL is a server address that may hold a user name and password,
// such as redis://:password@host:6379/0. It prints without the password,
// and as "[redacted]" when the password cannot be found in it; Value
// returns it whole.
type ServerURL string

// Value returns the URL whole, password included, for the client.
func (u ServerURL) Value() string { return string(u) }

// String returns the URL with any password replaced by "xxxxx", or each
// of several comma-separated URLs so redacted. A URL that does not parse,
// or whose password an unescaped '/', '?' or '#' has cut, prints as
// "[redacted]".
func (u ServerURL) String() string { return redact.URL(string(u)) }

// GoString keeps %#v from printing the password.
func (u ServerURL) GoString() string { return `"` + u.String() + `"` }

// LogValue keeps log/slog from printing the password.
func (u ServerURL) LogValue() slog.Value { return slog.StringValue(u.String()) }

// MarshalText keeps encoding/json and other encoders from printing the
// password.
func (u ServerURL) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// hostOf returns the host:port of a URL for messages, without any user
// name or password, or "[redacted]" when it cannot be parsed.
func hostOf(raw string) string {
	parsed, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || parsed.Host == "" {
		return redacted
	}
	return parsed.Host
}
