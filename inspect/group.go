package inspect

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"unicode/utf8"
)

// maxGroupErrorLen bounds a normalised error message, so that a long panic
// message stays readable in a table and an alert.
const maxGroupErrorLen = 200

// normalisers replace the parts of an error message that vary between
// failures of one cause, in this order: a UUID before the hex and number
// rules could split it, a time before its digits become numbers, hex ids
// before numbers.
var normalisers = []func(string) string{
	replacer(`(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`, "<uuid>"),
	replacer(`\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?`, "<time>"),
	replacer(`\b\d{2}:\d{2}:\d{2}(\.\d+)?\b`, "<time>"),
	replacer(`[\w.+-]+@[\w-]+(\.[\w-]+)+`, "<email>"),
	replacer(`\b\d{1,3}(\.\d{1,3}){3}\b`, "<ip>"),
	replacer(`(?i)\b0x[0-9a-f]+\b`, "<hex>"),
	replaceHexWords,
	replacer(`\d+(\.\d+)?`, "<n>"),
}

func replacer(pattern, replacement string) func(string) string {
	re := regexp.MustCompile(pattern)
	return func(s string) string { return re.ReplaceAllString(s, replacement) }
}

// hexWord matches a word that may be a hex id.
var hexWord = regexp.MustCompile(`(?i)\b[0-9a-f]{6,}\b`)

// replaceHexWords replaces hex words that hold both a digit and a letter;
// the others are plain words or numbers.
func replaceHexWords(s string) string {
	return hexWord.ReplaceAllStringFunc(s, func(word string) string {
		if strings.ContainsAny(word, "0123456789") && strings.ContainsAny(strings.ToLower(word), "abcdef") {
			return "<hex>"
		}
		return word
	})
}

// NormalizeError reduces an error message to its cause: the first line,
// with UUIDs, times, email addresses, IP addresses, hex strings and numbers
// replaced by placeholders such as <uuid> and <n>, cut to 200 characters.
// Messages of one outage that differ only in such ids normalise alike.
func NormalizeError(message string) string {
	line, _, _ := strings.Cut(message, "\n")
	line = strings.TrimSpace(line)
	for _, normalise := range normalisers {
		line = normalise(line)
	}
	return truncate(line, maxGroupErrorLen)
}

// GroupKey returns the key of the error group of a failure: eight hex digits
// derived from the handler and the normalised error. Operators pass it to
// select a group for replay or deletion.
func GroupKey(handler, errorMessage string) string {
	sum := sha256.Sum256([]byte(handler + "\x00" + NormalizeError(errorMessage)))
	return hex.EncodeToString(sum[:4])
}

// truncate cuts s to at most n bytes without splitting a character, ending
// it with "..." when it cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
