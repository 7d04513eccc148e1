package config

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestChoose(t *testing.T) {
	answers := func(context.Context, string) bool { return true }
	silent := func(context.Context, string) bool { return false }

	cases := []struct {
		name    string
		vars    map[string]string
		flags   []Setting
		probe   func(context.Context, string) bool
		want    string
		reason  string
		guessed bool
	}{
		{name: "BrokerKeyWins", vars: map[string]string{"DEADLETTER_BROKER": "memory", "REDIS_URL": "redis://r:6379"},
			probe: answers, want: BrokerMemory, reason: "set by DEADLETTER_BROKER"},
		{name: "AutoIsUnset", vars: map[string]string{"DEADLETTER_BROKER": "auto"},
			probe: silent, want: BrokerEmbedded, guessed: true,
			reason: "no broker is configured and nothing answers on 127.0.0.1:6379"},
		{name: "RedisURL", vars: map[string]string{"REDIS_URL": "redis://r:6379"},
			probe: silent, want: BrokerRedis, reason: "REDIS_URL is set"},
		{name: "NATSURLBeatsLocalRedis", flags: []Setting{{Key: "nats.url", Value: "nats://n:4222", Origin: "--nats-url"}},
			probe: answers, want: BrokerNATS, reason: "--nats-url is set"},
		{name: "BothURLs", vars: map[string]string{"REDIS_URL": "redis://r:6379", "NATS_URL": "nats://n:4222"},
			probe: silent, want: BrokerRedis,
			reason: "REDIS_URL is set; NATS_URL is set too, so choose with --broker or DEADLETTER_BROKER"},
		{name: "LocalRedis", probe: answers, want: BrokerRedis, guessed: true,
			reason: "no broker is configured and Redis answers on 127.0.0.1:6379"},
		{name: "Embedded", probe: silent, want: BrokerEmbedded, guessed: true,
			reason: "no broker is configured and nothing answers on 127.0.0.1:6379"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := load(t, "", c.vars, c.flags...)
			choice := cfg.choose(context.Background(), c.probe)
			require.Equal(t, Choice{Broker: c.want, Reason: c.reason, Guessed: c.guessed}, choice)
		})
	}
}

func TestDefaultDataDir(t *testing.T) {
	t.Run("FollowsXDGDataHome", func(t *testing.T) {
		t.Setenv("XDG_DATA_HOME", "/srv/data")
		dir, err := DefaultDataDir()
		require.NoError(t, err)
		require.Equal(t, "/srv/data/deadletter", dir)
	})
	t.Run("FallsBackToHome", func(t *testing.T) {
		home := t.TempDir()
		t.Setenv("XDG_DATA_HOME", "")
		t.Setenv("HOME", home)
		dir, err := DefaultDataDir()
		require.NoError(t, err)
		require.Equal(t, filepath.Join(home, ".local", "share", "deadletter"), dir)
	})
	t.Run("ExpandsHomeInDataDir", func(t *testing.T) {
		home, err := os.UserHomeDir()
		require.NoError(t, err)
		cfg := load(t, "", map[string]string{"DEADLETTER_DATA_DIR": "~/dl"})
		require.Equal(t, filepath.Join(home, "dl"), cfg.DataDir)
	})
}
