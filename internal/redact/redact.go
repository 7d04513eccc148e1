// Package redact keeps secrets and message contents out of errors, logs
// and command output. It hides the secrets that server URLs carry, cuts
// identifiers read from a message to short escaped excerpts, and describes
// JSON errors without the input that they quote.
package redact

import (
	"errors"
	"net/url"
	"strings"
)

// Placeholder replaces a value that is hidden whole.
const Placeholder = "[redacted]"

// URL returns raw, one URL or several separated by commas, for people to
// read: each password is replaced by "xxxxx", and so is a user name
// without a password, which NATS reads as a token. A URL whose secret
// cannot be found in it is replaced by Placeholder whole. That is a URL
// that does not parse, one without a host, and one with an '@' after its
// host, where an unescaped '/', '?' or '#' in a password moves the rest of
// the password.
func URL(raw string) string {
	if raw == "" {
		return ""
	}
	parts := strings.Split(raw, ",")
	for i, part := range parts {
		parts[i] = oneURL(strings.TrimSpace(part))
	}
	return strings.Join(parts, ",")
}

func oneURL(raw string) string {
	parsed, err := url.Parse(raw)
	if err != nil || parsed.Host == "" || strings.Contains(afterHost(raw), "@") {
		return Placeholder
	}
	if parsed.User == nil {
		return parsed.String()
	}
	if _, hasPassword := parsed.User.Password(); !hasPassword {
		parsed.User = url.User("xxxxx")
		return parsed.String()
	}
	return parsed.Redacted()
}

// afterHost returns the path, query and fragment of raw: what follows the
// first '/', '?' or '#' after the scheme's "//".
func afterHost(raw string) string {
	_, rest, found := strings.Cut(raw, "//")
	if !found {
		rest = raw
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		return rest[i:]
	}
	return ""
}

// errInvalidURL replaces the message of a URL that failed to parse.
var errInvalidURL = errors.New("invalid URL (not shown, since it may hold a password)")

// URLError returns err without the URL that a *url.Error in it carries, as
// the errors of net/url and net/http do, because the URL may hold a
// password or a secret path. When the URL failed to parse, the cause is
// dropped too, because it quotes the part that failed. Otherwise the
// cause, such as a refused connection, is returned. Other errors are
// returned unchanged.
func URLError(err error) error {
	var urlErr *url.Error
	if !errors.As(err, &urlErr) {
		return err
	}
	if urlErr.Op == "parse" {
		return errInvalidURL
	}
	return urlErr.Err
}
