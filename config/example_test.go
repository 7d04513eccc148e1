package config_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/deadletter/deadletter/config"
)

// A service reads its configuration once at start and gives each handler
// its policy.
func Example() {
	cfg, err := config.Load(config.Sources{
		LookupEnv: func(name string) (string, bool) {
			env := map[string]string{"DEADLETTER_BROKER": "memory", "DEADLETTER_RETRY_INITIAL": "1s"}
			v, ok := env[name]
			return v, ok
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	broker, err := config.Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer broker.Close()

	fmt.Println(broker.Describe())
	fmt.Println(cfg.Policy("send_email").Pause(2) == 2*time.Second)
	// Output:
	// memory (set by DEADLETTER_BROKER)
	// true
}

// A bad value fails with one line that names where it was set.
func ExampleLoad_error() {
	_, err := config.Load(config.Sources{
		Flags: []config.Setting{{Key: "retry.handlers.send_email.initial", Value: "2x"}},
	})
	fmt.Println(err)
	// Output:
	// config: retry.handlers.send_email.initial: "2x" is not a duration (example: 2s)
}
