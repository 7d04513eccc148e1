package nats

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/core"
)

func TestConfig(t *testing.T) {
	t.Run("RejectsInvalidFields", func(t *testing.T) {
		cases := map[string]Config{
			"prefix with dot":      {Prefix: "a.b"},
			"prefix with space":    {Prefix: "a b"},
			"negative cap":         {DLQMaxLen: -2},
			"negative state age":   {RetryStateMaxAge: -2},
			"short ack wait":       {AckWait: time.Millisecond},
			"negative in flight":   {MaxInFlight: -1},
			"negative close":       {CloseTimeout: -1},
			"negative ack pending": {MaxAckPending: -2},
		}
		for name, cfg := range cases {
			require.ErrorIs(t, cfg.Validate(), core.ErrInvalidConfig, name)
			_, err := NewAdapter(cfg)
			require.ErrorIs(t, err, core.ErrInvalidConfig, name)
		}
	})

	t.Run("AcceptsZeroValue", func(t *testing.T) {
		require.NoError(t, Config{}.Validate())
		cfg := Config{}.withDefaults()
		require.NoError(t, cfg.Validate())
		require.Equal(t, DefaultPrefix, cfg.Prefix)
		require.Equal(t, DefaultAckWait, cfg.AckWait)
		require.Equal(t, -1, cfg.MaxAckPending)
	})

	t.Run("ReportsUnreachableServer", func(t *testing.T) {
		_, err := NewAdapter(Config{URL: "nats://127.0.0.1:1"})
		require.ErrorContains(t, err, "connect to nats at nats://127.0.0.1:1")
	})

	t.Run("RejectsPrefixDifferingOnlyInCase", func(t *testing.T) {
		a := newTestAdapter(t)
		_, err := NewAdapter(Config{URL: testURL, Prefix: strings.ToUpper(a.cfg.Prefix)})
		require.ErrorIs(t, err, ErrNameConflict)
	})
}

func TestConsumerName(t *testing.T) {
	require.Equal(t, "send_welcome_email@patient~registered", consumerName("send_welcome_email", "patient.registered"))
	require.NotEqual(t, consumerName("a", "b.c"), consumerName("a", "b_c"))

	long := consumerName(strings.Repeat("h", 128), strings.Repeat("word.", 39)+"end")
	require.Len(t, long, maxConsumerName)
	other := consumerName(strings.Repeat("h", 128), strings.Repeat("word.", 39)+"ene")
	require.NotEqual(t, long, other)
}

func TestHeaderValueEscape(t *testing.T) {
	values := []string{
		"", "plain", " leading", "trailing ", " ", "two\nlines\r\n", "tab\there",
		`back\slash`, "nul\x00byte", "del\x7f", "Zoë 東京 ⚠️", `\x41 literal`,
	}
	for _, value := range values {
		escaped := escapeHeaderValue(value)
		require.NotContains(t, escaped, "\n")
		require.Equal(t, strings.TrimSpace(escaped), escaped, "value %q", value)
		got, err := unescapeHeaderValue(escaped)
		require.NoError(t, err)
		require.Equal(t, value, got)
	}
	require.Equal(t, "plain words", escapeHeaderValue("plain words"))

	for _, bad := range []string{`ends\`, `\q`, `\x4`, `\xzz`} {
		_, err := unescapeHeaderValue(bad)
		require.Error(t, err, "value %q", bad)
	}
}

func TestServerAtLeast(t *testing.T) {
	require.True(t, serverAtLeast("2.10.0", 2, 10))
	require.True(t, serverAtLeast("2.15.3", 2, 10))
	require.True(t, serverAtLeast("3.0.0", 2, 10))
	require.False(t, serverAtLeast("2.9.10", 2, 10))
	require.True(t, serverAtLeast("unknown", 2, 10))
}

func TestStartEmbedded(t *testing.T) {
	url, shutdown, err := StartEmbedded(t.TempDir())
	require.NoError(t, err)
	defer shutdown()

	a, err := NewAdapter(Config{URL: url})
	require.NoError(t, err)
	require.NoError(t, a.Close())
}
