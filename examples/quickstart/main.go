// Command quickstart registers a handler for patient.registered on Redis,
// publishes one event and handles it until interrupted or terminated.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/adapters/redisstream"
	"github.com/deadletter/deadletter/core"
)

func main() {
	// SIGTERM, as sent by service managers, lets running handlers finish.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	adapter, err := redisstream.NewAdapter(redisstream.Config{URL: "redis://127.0.0.1:6379/0"})
	if err != nil {
		log.Fatal(err)
	}
	defer adapter.Close()

	// Handlers get 3 retries after 2 s, 4 s and 8 s, then the DLQ.
	bus, err := deadletter.New(deadletter.Config{Adapter: adapter})
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()

	err = bus.Handle("send_welcome_email", "patient.registered",
		func(ctx context.Context, ev core.Event) error {
			var patient struct {
				Email string `json:"email"`
			}
			if err := json.Unmarshal(ev.Data, &patient); err != nil || patient.Email == "" {
				// Bad data cannot get better: dead-letter it at once.
				return core.Permanent(errors.New("patient has no email address"))
			}
			log.Printf("welcome mail to %s", patient.Email)
			return nil // an error here would be retried
		})
	if err != nil {
		log.Fatal(err)
	}

	go func() {
		<-bus.Running()
		ev, err := core.NewEvent("patient.registered", "patient",
			"7f9c2e1a-5b3d-4c8e-9a6f-1d2b3c4d5e6f", map[string]string{"email": "ana@example.org"})
		if err == nil {
			err = bus.Publish(ctx, ev)
		}
		if err != nil {
			log.Print(err)
		}
	}()
	if err := bus.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
