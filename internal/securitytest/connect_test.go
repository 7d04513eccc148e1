package securitytest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/config"
)

// TestConnectionErrorsHideSecrets connects with URLs that hold the broker's
// password, or a wrong one, and fail: a rejected password, a port where
// nothing listens, and URLs that do not parse because the password has a
// character that URLs reserve. The adapters, the config package and the
// CLI each report the failure without the password.
func TestConnectionErrorsHideSecrets(t *testing.T) {
	clearConfigEnv(t)
	t.Run("Redis", func(t *testing.T) { testConnectionErrors(t, startRedisBroker) })
	t.Run("NATS", func(t *testing.T) { testConnectionErrors(t, startNATSBroker) })
}

func testConnectionErrors(t *testing.T, start func(*testing.T, secrets) broker) {
	s := newSecrets()
	b := start(t, s)
	tr := newTranscript()
	var logs lockedBuffer
	logger := captureLogs(t, &logs)

	for i, url := range b.badURLs {
		// The URL stays out of the names, which failure messages print.
		where := fmt.Sprintf("bad URL %d", i)

		_, err := b.newAdapter(url, b.prefix(), logger)
		tr.addError(t, where+": NewAdapter", err)

		cfg, err := config.Load(config.Sources{
			LookupEnv: func(string) (string, bool) { return "", false },
			Flags: []config.Setting{
				{Key: "broker", Value: b.name, Origin: "--broker"},
				{Key: b.name + ".url", Value: url, Origin: b.urlFlag},
			},
		})
		if err == nil {
			_, err = config.Open(context.Background(), cfg, logger)
		}
		tr.addError(t, where+": config", err)

		code, _, _ := runCLI(tr, where, "dlq", "stats", "--broker", b.name, b.urlFlag, url, "--prefix", b.prefix())
		require.Equal(t, 1, code, "%s: dlq stats fails", where)
		code, _, _ = runCLI(tr, where, "monitor", "--once", "--json", "--log-level", "debug",
			"--broker", b.name, b.urlFlag, url, "--prefix", b.prefix())
		require.Equal(t, 1, code, "%s: monitor --once fails", where)
	}

	tr.add("log", logs.String())
	tr.requireNoSecrets(t, s, nil)
}

// TestConfigErrorsHideSecrets loads configuration files and environment
// variables that hold secrets in values that are invalid or misplaced, and
// checks that neither the error nor the CLI's output shows them.
func TestConfigErrorsHideSecrets(t *testing.T) {
	clearConfigEnv(t)
	s := newSecrets()
	tr := newTranscript()
	pw, hook := s.password, s.hook
	files := []string{
		"redis:\n  url: redis://:" + pw + "/x@127.0.0.1:1/0\n",
		"redis:\n  url: redis://:6379/" + pw + "@127.0.0.1:1/0\n",
		"redis:\n  url: \"redis://:" + pw + "@127.0.0.1:1/0\n",
		"redis:\n\tpassword: " + pw + "\n",
		"redis:\n  password:\n    - " + pw + "\n",
		"redis:\n  password: " + pw + "\n  password: " + pw + "\n",
		"redis:\n  pasword: " + pw + "\n",
		"redis:\n  url: redis://:" + pw + "@127.0.0.1:1/0\n  url: x\n",
		"nats:\n  url: nats://app:" + pw + "@[::1\n",
		"nats:\n  url: nats://app:" + pw + "@127.0.0.1:1,nats://app:" + pw + "@127.0.0.1:notaport\n",
		"nats:\n  password: " + pw + "\n",
		"nats:\n  user: app\n  password: " + pw + "\n  token: " + pw + "\n",
		"monitor:\n  webhook_url: ftp://" + hook + "\n",
		"monitor:\n  slack_webhook_url: " + hook + "\n",
		"monitor:\n  pagerduty_url: https://user:" + pw + "@127.0.0.1:notaport/\n",
		pw + "\n",
		"{" + pw + "\n",
	}
	for i, content := range files {
		where := fmt.Sprintf("config file %d", i)
		path := filepath.Join(t.TempDir(), "deadletter.yaml")
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))

		tr.addError(t, where+": Load", loadAndOpen(config.Sources{
			File: path, LookupEnv: func(string) (string, bool) { return "", false },
		}))
		code, _, _ := runCLI(tr, where, "dlq", "stats", "--config", path)
		require.Equal(t, 1, code, "%s: dlq stats fails", where)
	}

	envs := []map[string]string{
		{"REDIS_URL": "redis://:" + pw + "?x@127.0.0.1:1/0"},
		{"REDIS_URL": "redis://:6379?" + pw + "@127.0.0.1:1/0"},
		{"NATS_URL": "nats://" + pw + "@127.0.0.1:notaport"},
		{"DEADLETTER_WEBHOOK_URL": "http://127.0.0.1:1/%zz" + hook},
		{"DEADLETTER_SLACK_WEBHOOK_URL": "https://" + hook + ":notaport/"},
	}
	for i, vars := range envs {
		where := fmt.Sprintf("environment %d", i)
		tr.addError(t, where+": Load", loadAndOpen(config.Sources{LookupEnv: func(key string) (string, bool) {
			v, ok := vars[key]
			return v, ok
		}}))
	}

	tr.requireNoSecrets(t, s, nil)
}

// loadAndOpen loads the configuration and, when it loads, opens its broker,
// and returns the first error. Every configuration the tests give fails
// before a connection is tried, so no shared server is reached.
func loadAndOpen(src config.Sources) error {
	cfg, err := config.Load(src)
	if err != nil {
		return err
	}
	b, err := config.Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		_ = b.Close()
		return fmt.Errorf("opened %s, which the test expected to fail", b.Choice.Broker)
	}
	return err
}
