package config

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

// marker is planted in every secret; no message may contain it.
const marker = "s3cret-MARKER-7f3a"

func requireNoMarker(t *testing.T, text, what string) {
	t.Helper()
	require.NotContains(t, text, marker, "%s shows a secret: %s", what, text)
}

func TestSecretsStayHidden(t *testing.T) {
	file := writeFile(t, `
redis:
  url: redis://app:`+marker+`@127.0.0.1:1/0
  password: `+marker+`
nats:
  url: nats://app:`+marker+`@127.0.0.1:1
monitor:
  slack_webhook_url: https://hooks.slack.test/`+marker+`
  pagerduty_routing_key: `+marker+`
  webhook_url: https://alerts.test/`+marker+`
`)
	cfg := load(t, file, map[string]string{"NATS_TOKEN": "", "REDIS_PASSWORD": marker})
	require.Equal(t, marker, cfg.Redis.Password.Value(), "the client still gets the secret")

	t.Run("Printed", func(t *testing.T) {
		for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
			requireNoMarker(t, fmt.Sprintf(format, cfg), format)
		}
		requireNoMarker(t, fmt.Sprint(cfg.Redis.URL), "Redis URL")
		require.Equal(t, "redis://app:xxxxx@127.0.0.1:1/0", cfg.Redis.URL.String())
	})

	t.Run("Logged", func(t *testing.T) {
		var text, js bytes.Buffer
		slog.New(slog.NewTextHandler(&text, nil)).Info("config", slog.Any("config", cfg),
			slog.Any("password", cfg.Redis.Password), slog.Any("url", cfg.NATS.URL))
		slog.New(slog.NewJSONHandler(&js, nil)).Info("config", slog.Any("config", cfg),
			slog.Any("password", cfg.Redis.Password), slog.Any("url", cfg.NATS.URL))
		requireNoMarker(t, text.String(), "text log")
		requireNoMarker(t, js.String(), "JSON log")
		require.Contains(t, text.String(), "password=[redacted]")
	})

	t.Run("Marshaled", func(t *testing.T) {
		data, err := json.Marshal(cfg)
		require.NoError(t, err)
		requireNoMarker(t, string(data), "JSON")
	})

	t.Run("InErrors", func(t *testing.T) {
		bad := []map[string]string{
			{"REDIS_URL": "redis://:" + marker + "@127.0.0.1:notaport/0"},
			{"REDIS_URL": "http://:" + marker + "@127.0.0.1:6379"},
			{"NATS_URL": "nats://" + marker + "@[::1"},
			{"NATS_URL": "redis://" + marker + "@127.0.0.1:4222"},
			{"DEADLETTER_WEBHOOK_URL": "ftp://" + marker},
			{"DEADLETTER_SLACK_WEBHOOK_URL": marker},
			{"NATS_PASSWORD": marker},
			{"NATS_USER": "app", "NATS_PASSWORD": marker, "NATS_TOKEN": marker},
		}
		for _, vars := range bad {
			_, err := Load(Sources{LookupEnv: env(vars)})
			require.Error(t, err, "%v", vars)
			requireNoMarker(t, err.Error(), "Load error")
		}
	})

	t.Run("InConnectionErrors", func(t *testing.T) {
		for _, broker := range []string{BrokerRedis, BrokerNATS} {
			c := cfg
			c.Broker = broker
			_, err := Open(context.Background(), c, slog.New(slog.DiscardHandler))
			require.Error(t, err, "nothing listens on port 1")
			requireNoMarker(t, err.Error(), broker+" connection error")
		}
	})

	t.Run("InHelp", func(t *testing.T) {
		flags := pflag.NewFlagSet("test", pflag.ContinueOnError)
		var f Flags
		f.Add(flags, MonitorKeys...)
		require.NoError(t, flags.Parse([]string{"--pagerduty-routing-key", marker}))
		requireNoMarker(t, flags.FlagUsages(), "help")
		requireNoMarker(t, flags.Lookup("pagerduty-routing-key").Value.String(), "flag value")
		require.Equal(t, []Setting{{Key: "monitor.pagerduty_routing_key", Value: marker,
			Origin: "--pagerduty-routing-key"}}, f.Settings())
	})
}
