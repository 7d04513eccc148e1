package redact

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxExcerpt is the maximum length of the escaped text that Excerpt keeps,
// quotes and length note aside.
const MaxExcerpt = 64

// maxJSONMessage bounds the message of a JSON syntax error that JSONError
// keeps. The messages of encoding/json quote at most one character of the
// input, but those of other implementations may quote more.
const maxJSONMessage = 100

// Excerpt returns the start of s for an error message or a log line: Go
// quoted and escaped, at most MaxExcerpt bytes of escaped text, and when s
// is longer, followed by "..." and its full length in bytes. Use it for
// identifiers from a message, such as an event type, that help an operator
// find the message. Values that may hold personal data get no excerpt at
// all.
func Excerpt(s string) string {
	escaped, n := escapePrefix(s, MaxExcerpt)
	if n == len(s) {
		return `"` + escaped + `"`
	}
	return fmt.Sprintf(`"%s"... (%d bytes)`, escaped, len(s))
}

// escapePrefix escapes the longest start of s whose escaped form fits in
// limit bytes. It returns that form and the number of bytes of s it covers,
// which always ends at a whole character.
func escapePrefix(s string, limit int) (string, int) {
	var b strings.Builder
	n := 0
	for n < len(s) {
		_, size := utf8.DecodeRuneInString(s[n:])
		quoted := strconv.Quote(s[n : n+size])
		escaped := quoted[1 : len(quoted)-1]
		if b.Len()+len(escaped) > limit {
			break
		}
		b.WriteString(escaped)
		n += size
	}
	return b.String(), n
}

// JSONError describes err, an error of json.Unmarshal, without the input
// values that some of its errors quote. It keeps the message and byte
// offset of a syntax error, the JSON type and the Go type of a type
// mismatch, and the offset of invalid base64. Any other error becomes a
// fixed message with its Go type, since its text may quote the input.
func JSONError(err error) string {
	var (
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		base64Err base64.CorruptInputError
	)
	switch {
	case errors.As(err, &syntaxErr):
		text := strings.TrimPrefix(syntaxErr.Error(), "json: ")
		message, n := escapePrefix(text, maxJSONMessage)
		if n < len(text) {
			message += "..."
		}
		return fmt.Sprintf("invalid JSON near byte offset %d: %s", syntaxErr.Offset, message)
	case errors.As(err, &base64Err):
		return fmt.Sprintf("invalid base64 at byte %d of a JSON string", int64(base64Err))
	case errors.As(err, &typeErr):
		return fmt.Sprintf("JSON %s near byte offset %d where Go type %v was expected",
			JSONKind(typeErr.Value), typeErr.Offset, typeErr.Type)
	}
	return fmt.Sprintf("invalid JSON value (%T, not shown since it may quote the input)", err)
}

// JSONKind returns the JSON type named at the start of value, the Value of
// a json.UnmarshalTypeError, such as "array" or "number", and drops the
// literal that follows a number.
func JSONKind(value string) string {
	kind, _, _ := strings.Cut(value, " ")
	switch kind {
	case "object", "array", "string", "number", "bool", "null":
		return kind
	}
	return "value"
}
