package nats

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"github.com/deadletter/deadletter/internal/redact"
)

// uuidHeader carries the Watermill message UUID. Every other header that
// does not start with "Nats-", except replayHandlerHeader, is a metadata
// key.
const uuidHeader = "Watermill-Uuid"

// natsHeaderPrefix starts the headers that NATS itself reads or sets.
const natsHeaderPrefix = "Nats-"

// maxHeaderBytes bounds the headers that the adapter writes from fields of
// its own, names and values. nats-server 2.15.3 rejects a JetStream message
// whose header block exceeds 65,535 bytes, and a DLQ entry rejected that
// way would have its event delivered again forever. The rest of the limit
// is left for headers added later, such as replayed_at.
const maxHeaderBytes = 60 << 10

// encodeMessage returns msg as a NATS message on subject: the payload as the
// data, the UUID and metadata as headers.
func encodeMessage(subject string, msg *message.Message) (*nats.Msg, error) {
	out := nats.NewMsg(subject)
	out.Data = msg.Payload
	out.Header.Set(uuidHeader, escapeHeaderValue(msg.UUID))
	for key, value := range msg.Metadata {
		if err := checkHeaderKey(key); err != nil {
			return nil, fmt.Errorf("encode message %s: metadata %w", msg.UUID, err)
		}
		out.Header.Set(key, escapeHeaderValue(value))
	}
	return out, nil
}

// checkHeaderKey reports a metadata key that cannot travel as a header of
// its own.
func checkHeaderKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("key is empty")
	case key == uuidHeader || key == replayHandlerHeader || strings.HasPrefix(key, natsHeaderPrefix):
		return fmt.Errorf("key %q is reserved by the nats adapter", key)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return fmt.Errorf("key %q must be printable ASCII without spaces or ':'", key)
		}
	}
	return nil
}

// setHeaders sets each name and value pair of fields as a header, with the
// value escaped. When the headers would exceed maxHeaderBytes, it cuts the
// values longer than a common cap, each ending with a note of its full
// length, so that short values stay whole and long ones share the rest.
func setHeaders(msg *nats.Msg, fields []string) {
	escaped := make([]string, len(fields)/2)
	lengths := make([]int, len(escaped))
	budget := maxHeaderBytes
	for i := range escaped {
		escaped[i] = escapeHeaderValue(fields[2*i+1])
		lengths[i] = len(escaped[i])
		budget -= len(fields[2*i]) + len(": \r\n")
	}

	if limit, over := valueCap(lengths, budget); over {
		for i := range escaped {
			if len(escaped[i]) > limit {
				escaped[i] = escapeHeaderValue(cutValue(fields[2*i+1], limit))
			}
		}
	}
	for i := range escaped {
		msg.Header.Set(fields[2*i], escaped[i])
	}
}

// valueCap returns the largest length that, with every longer value cut to
// it, makes lengths sum to at most budget. over is false when they fit
// whole.
func valueCap(lengths []int, budget int) (limit int, over bool) {
	sorted := slices.Sorted(slices.Values(lengths))
	for i, length := range sorted {
		longer := len(sorted) - i
		if length*longer > budget {
			return max(budget/longer, 0), true
		}
		budget -= length
	}
	return 0, false
}

// cutValue returns the longest start of s that, followed by a note of the
// length of s, escapes to at most limit bytes. It cuts at the start of a
// UTF-8 sequence and returns "" when even the note does not fit.
func cutValue(s string, limit int) string {
	withNote := func(n int) string {
		return fmt.Sprintf("%s\n... cut at %d of %d bytes to fit the nats header limit", s[:n], n, len(s))
	}
	// The escaped length grows with n, so the search finds the first n
	// that no longer fits.
	n := sort.Search(len(s)+1, func(n int) bool { return len(escapeHeaderValue(withNote(n))) > limit }) - 1
	if n < 0 {
		return ""
	}
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return withNote(n)
}

// decodeHeaders returns the metadata and UUID carried in headers. The UUID
// is "" when the header is missing, as on a message published by another
// tool.
func decodeHeaders(header nats.Header) (uuid string, metadata message.Metadata, err error) {
	metadata = make(message.Metadata, len(header))
	for key, values := range header {
		if len(values) == 0 || key == replayHandlerHeader || strings.HasPrefix(key, natsHeaderPrefix) {
			continue
		}
		value, err := unescapeHeaderValue(values[0])
		if err != nil {
			return "", nil, fmt.Errorf("header %s: %w", redact.Excerpt(key), err)
		}
		if key == uuidHeader {
			uuid = value
			continue
		}
		metadata[key] = value
	}
	return uuid, metadata, nil
}

// escapeHeaderValue makes s survive as a NATS header value, which is one
// line with surrounding spaces trimmed. It escapes backslashes, control
// characters and a space at either end with backslash sequences. A value
// without any of them is unchanged, so headers read well in `nats` tools.
func escapeHeaderValue(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < ' ' || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		case c == ' ' && (i == 0 || i == len(s)-1):
			b.WriteString(`\x20`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func needsEscape(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' {
		return true
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c < ' ' || c == 0x7f {
			return true
		}
	}
	return false
}

// unescapeHeaderValue reverses escapeHeaderValue.
func unescapeHeaderValue(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("value ends with a lone backslash")
		}
		i++
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'x':
			if i+2 >= len(s) {
				return "", fmt.Errorf("value has a short \\x escape")
			}
			n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf("value has an invalid \\x escape %q", s[i-1:i+3])
			}
			b.WriteByte(byte(n))
			i += 2
		default:
			return "", fmt.Errorf("value has an unknown escape \\%c", s[i])
		}
	}
	return b.String(), nil
}

// unescapeOrKeep returns s unescaped, or s as it is when it is not a valid
// escaped value, as in a header written by another tool.
func unescapeOrKeep(s string) string {
	value, err := unescapeHeaderValue(s)
	if err != nil {
		return s
	}
	return value
}
