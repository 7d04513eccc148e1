package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/redact"
)

// The parsers below turn one raw value into a field's value. Their errors
// are the reason part of a configuration error: they quote the value, but
// never a secret's, and state what is allowed. Load adds the key.

func parseDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (example: 2s)", v)
	}
	return d, nil
}

// parseDurationOrOff reads a duration, or "-1" for off, which core reads
// as -1 ns.
func parseDurationOrOff(v, what string) (time.Duration, error) {
	if v == "-1" {
		return -1, nil
	}
	d, err := parseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (example: 1h), nor -1 for %s", v, what)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative; use a positive duration, 0 for the default or -1 for %s", v, what)
	}
	return d, nil
}

func parseNonNegativeDuration(v string) (time.Duration, error) {
	d, err := parseDuration(v)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative; use a positive duration or 0 for the default", v)
	}
	return d, nil
}

func parseInt(v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number", v)
	}
	return n, nil
}

// parseCount reads a count that is positive, 0 for the default or -1 for
// what -1 means for the key.
func parseCount(v, minusOne string) (int64, error) {
	n, err := parseInt(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number; use a positive count, 0 for the default or -1 for %s",
			v, minusOne)
	}
	if n < -1 {
		return 0, fmt.Errorf("%d is out of range; use a positive count, 0 for the default or -1 for %s",
			n, minusOne)
	}
	if n > math.MaxInt32 {
		return 0, fmt.Errorf("%d is too large; use at most %d", n, math.MaxInt32)
	}
	return n, nil
}

func parseFloat(v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a number", v)
	}
	return f, nil
}

func parseBroker(v string) (string, error) {
	switch v {
	case BrokerAuto, BrokerRedis, BrokerNATS, BrokerEmbedded, BrokerMemory:
		return v, nil
	}
	return "", fmt.Errorf("%q is not a broker; use redis, nats, embedded, memory or auto", v)
}

func parseLevel(v string) (slog.Level, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(v)); err != nil {
		return 0, fmt.Errorf("%q is not a log level; use debug, info, warn or error", v)
	}
	return level, nil
}

func parsePrefix(v string) (string, error) {
	if strings.ContainsAny(v, " \t\r\n") {
		return "", fmt.Errorf("%q contains a space; use letters, digits, '_', '-' or ':'", v)
	}
	return v, nil
}

// parseDir expands a leading "~/" to the home directory.
func parseDir(v string) (string, error) {
	if rest, ok := strings.CutPrefix(v, "~/"); ok {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("%q starts with ~/ but the home directory is unknown; use an absolute path", v)
		}
		return filepath.Join(home, rest), nil
	}
	return v, nil
}

// parseFile checks that a file exists and is a regular file, so that a typo
// fails at start instead of at the first TLS handshake.
func parseFile(v string) (string, error) {
	path, err := parseDir(v)
	if err != nil {
		return "", err
	}
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("file %q does not exist", path)
	case err != nil:
		return "", fmt.Errorf("file %q cannot be read: %v", path, errors.Unwrap(err))
	case info.IsDir():
		return "", fmt.Errorf("%q is a directory; name a PEM file", path)
	}
	return path, nil
}

// parseServerURL checks each comma-separated URL's scheme. Its messages
// show the URL with the password hidden, or no URL when it does not parse,
// since the password's place is then unknown.
func parseServerURL(v string, schemes []string, example string) (ServerURL, error) {
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		parsed, err := url.Parse(part)
		if err != nil || parsed.Host == "" {
			return "", fmt.Errorf("the value is not a URL (not shown, since it may hold a password); example: %s",
				example)
		}
		if !slices.Contains(schemes, parsed.Scheme) {
			return "", fmt.Errorf("%q has scheme %q; use %s (example: %s)", redact.URL(part), parsed.Scheme,
				joinOr(schemes, "://"), example)
		}
	}
	return ServerURL(v), nil
}

func parseWebhookURL(v string) (Secret, error) {
	parsed, err := url.Parse(v)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return "", errors.New("the value is not an http:// or https:// URL (not shown, since it is a secret)")
	}
	return Secret(v), nil
}

func parsePagerDutyLevel(v string) (string, error) {
	if v != "warning" && v != "critical" {
		return "", fmt.Errorf("%q is not an alert level; use warning or critical", v)
	}
	return v, nil
}

// Policy fields, shared by retry.<field> and retry.handlers.<name>.<field>.

func setMaxRetries(p *core.Policy, v string) error {
	n, err := parseInt(v)
	if err != nil || n < -1 || n > math.MaxInt32 {
		return fmt.Errorf("%q is not allowed; use a positive count, 0 for the default (%d) or -1 for no retries",
			v, core.DefaultMaxRetries)
	}
	p.MaxRetries = int(n)
	return nil
}

func setInitial(p *core.Policy, v string) (err error) {
	p.Initial, err = parseNonNegativeDuration(v)
	return err
}

func setMultiplier(p *core.Policy, v string) error {
	f, err := parseFloat(v)
	if err != nil || (f != 0 && f < 1) {
		return fmt.Errorf("%q is not allowed; use a number of 1 or more, or 0 for the default (%g)",
			v, core.DefaultMultiplier)
	}
	p.Multiplier = f
	return nil
}

func setMaxInterval(p *core.Policy, v string) (err error) {
	p.MaxInterval, err = parseDurationOrOff(v, "no cap")
	return err
}

func setJitter(p *core.Policy, v string) error {
	f, err := parseFloat(v)
	if err != nil || f < 0 || f >= 1 {
		return fmt.Errorf("%q is not allowed; use a fraction of at least 0 and below 1, such as 0.2", v)
	}
	p.Jitter = f
	return nil
}

func setTimeout(p *core.Policy, v string) (err error) {
	p.Timeout, err = parseNonNegativeDuration(v)
	return err
}

// joinOr joins words as "a, b or c", each followed by suffix.
func joinOr(words []string, suffix string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = w + suffix
	}
	if len(quoted) == 1 {
		return quoted[0]
	}
	return strings.Join(quoted[:len(quoted)-1], ", ") + " or " + quoted[len(quoted)-1]
}
