package redact

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestExcerpt(t *testing.T) {
	long := strings.Repeat("a", MaxExcerpt)
	cases := []struct{ input, want string }{
		{"", `""`},
		{"patient.registered", `"patient.registered"`},
		{long, `"` + long + `"`},
		{long + "b", `"` + long + `"... (65 bytes)`},
		{"line\nbreak\x00\xff", `"line\nbreak\x00\xff"`},
		{strings.Repeat("\x01", 20), `"` + strings.Repeat(`\x01`, 16) + `"... (20 bytes)`},
		{strings.Repeat("é", 40), `"` + strings.Repeat("é", 32) + `"... (80 bytes)`},
		{"\u202eevil", `"\u202eevil"`},
	}
	for _, c := range cases {
		require.Equal(t, c.want, Excerpt(c.input), "Excerpt(%q)", c.input)
	}
}

func TestJSONError(t *testing.T) {
	const marker = "PII7anaSouza"
	var target struct {
		Name     string            `json:"name"`
		Metadata map[string]string `json:"metadata"`
		Payload  []byte            `json:"payload"`
	}
	cases := []struct{ input, want string }{
		{marker, "invalid JSON near byte offset 1: invalid character 'P' looking for beginning of value"},
		{`{"name":"` + marker, "invalid JSON near byte offset 21: unexpected end of JSON input"},
		{`{"name":["` + marker + `"]}`, "JSON array near byte offset 9 where Go type string was expected"},
		{`{"metadata":{"` + marker + `":1}}`, "JSON number near byte offset 29 where Go type string was expected"},
		{`{"payload":"` + marker + `!"}`, "invalid base64 at byte 12 of a JSON string"},
		{`["` + marker + `"]`, "JSON array near byte offset 1 where Go type struct"},
	}
	for _, c := range cases {
		err := json.Unmarshal([]byte(c.input), &target)
		require.Error(t, err, c.input)
		message := JSONError(err)
		require.NotContains(t, message, marker, "the message must not quote the input")
		require.Contains(t, message, c.want)
	}

	other := JSONError(errors.New(`parsing time "` + marker + `"`))
	require.NotContains(t, other, marker, "an error of another kind must not be shown")
	require.Contains(t, other, "*errors.errorString")
}
