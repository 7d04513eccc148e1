package testredis

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStart(t *testing.T) {
	t.Run("StartsServerOnFreePort", func(t *testing.T) {
		url, err := start()
		require.NoError(t, err)
		require.NoError(t, ping(url), "the started server must answer at %s", url)
		require.NotEqual(t, DefaultURL, url)
	})
}

func TestPrefix(t *testing.T) {
	t.Run("IsUniquePerCall", func(t *testing.T) {
		require.NotEqual(t, Prefix(), Prefix())
	})
}
