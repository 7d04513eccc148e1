package redact

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestURL(t *testing.T) {
	cases := []struct{ raw, want string }{
		{"", ""},
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis://:s3cret@127.0.0.1:6379/0", "redis://:xxxxx@127.0.0.1:6379/0"},
		{"redis://app:s3cret@127.0.0.1:6379/0", "redis://app:xxxxx@127.0.0.1:6379/0"},
		{"nats://s3cret@127.0.0.1:4222", "nats://xxxxx@127.0.0.1:4222"},
		{"nats://a:s3cret@h1:4222, nats://b:s3cret@h2:4222", "nats://a:xxxxx@h1:4222,nats://b:xxxxx@h2:4222"},
		{"nats://a:s3cret@h1:4222,nats://s3cret@[::1", "nats://a:xxxxx@h1:4222," + Placeholder},
		{"redis://:s3/cret@127.0.0.1:6379/0", Placeholder},
		{"redis://:6379/s3cret@127.0.0.1:6379/0", Placeholder},
		{"redis://:6379?s3cret@127.0.0.1:6379/0", Placeholder},
		{"redis://:6379#s3cret@127.0.0.1:6379/0", Placeholder},
		{"redis://:s3@cret@127.0.0.1:6379/0", "redis://:xxxxx@127.0.0.1:6379/0"},
		{"s3cret", Placeholder},
		{"127.0.0.1:6379", Placeholder},
		{"https://hooks.example.test/services/T0/B0?x=1", "https://hooks.example.test/services/T0/B0?x=1"},
	}
	for _, c := range cases {
		got := URL(c.raw)
		require.Equal(t, c.want, got, "URL(%q)", c.raw)
		require.NotContains(t, got, "s3cret", "URL(%q)", c.raw)
	}
}

func TestURLError(t *testing.T) {
	_, parseErr := url.Parse("redis://:s3cret/x@127.0.0.1:6379/0")
	require.Error(t, parseErr)
	require.NotContains(t, URLError(parseErr).Error(), "s3cret")
	require.NotContains(t, URLError(fmt.Errorf("connect: %w", parseErr)).Error(), "s3cret")

	_, getErr := http.Get("http://user:s3cret@127.0.0.1:1/hooks/s3cret")
	require.Error(t, getErr)
	require.NotContains(t, URLError(getErr).Error(), "s3cret")
	require.Contains(t, URLError(getErr).Error(), "127.0.0.1:1", "a network error keeps its cause")

	plain := errors.New("nats: authorization violation")
	require.Equal(t, plain, URLError(plain))
}
