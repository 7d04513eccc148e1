package deadletter_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/deadletter/deadletter"
	"github.com/deadletter/deadletter/adapters/memory"
	"github.com/deadletter/deadletter/core"
)

// patientID is the aggregate id of the examples' patient.
const patientID = "0b6c1f0e-8a8e-4a43-9a53-0c6f2d9b7d11"

// Example runs two handlers of patient.registered on the in-memory broker.
// The billing handler fails twice and succeeds on its second retry, after
// pauses of 10 ms and 20 ms. The welcome email handler runs once.
func Example() {
	adapter, err := memory.New(memory.Config{})
	if err != nil {
		panic(err)
	}
	defer adapter.Close()

	bus, err := deadletter.New(deadletter.Config{
		Adapter: adapter,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}

	welcomed := make(chan string, 1)
	err = bus.Handle("send_welcome_email", "patient.registered",
		func(ctx context.Context, ev core.Event) error {
			welcomed <- ev.AggregateID
			return nil
		})
	if err != nil {
		panic(err)
	}

	// The broker delivers a retry only after the failed attempt is over,
	// so attempts needs no lock.
	attempts := 0
	billing := make(chan string, 3)
	err = bus.Handle("create_billing_account", "patient.registered",
		func(ctx context.Context, ev core.Event) error {
			attempts++
			if attempts < 3 {
				billing <- fmt.Sprintf("attempt %d failed", attempts)
				return errors.New("billing service unavailable")
			}
			billing <- fmt.Sprintf("attempt %d succeeded", attempts)
			return nil
		},
		deadletter.WithPolicy(core.Policy{Initial: 10 * time.Millisecond}))
	if err != nil {
		panic(err)
	}

	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan error)
	go func() { stopped <- bus.Run(ctx) }()
	<-bus.Running()

	ev, err := core.NewEvent("patient.registered", "patient", patientID,
		map[string]string{"ward": "cardiology"})
	if err != nil {
		panic(err)
	}
	if err := bus.Publish(ctx, ev); err != nil {
		panic(err)
	}

	fmt.Println("welcome email sent to patient", <-welcomed)
	for range 3 {
		fmt.Println("billing:", <-billing)
	}

	stop()
	if err := <-stopped; err != nil {
		panic(err)
	}
	n, err := bus.DLQ().Len(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println("dead letter entries:", n)

	// Output:
	// welcome email sent to patient 0b6c1f0e-8a8e-4a43-9a53-0c6f2d9b7d11
	// billing: attempt 1 failed
	// billing: attempt 2 failed
	// billing: attempt 3 succeeded
	// dead letter entries: 0
}

// Example_permanent shows an error marked with core.Permanent sending its
// event to the dead letter queue after one attempt, and the entry read back.
func Example_permanent() {
	adapter, err := memory.New(memory.Config{})
	if err != nil {
		panic(err)
	}
	defer adapter.Close()

	bus, err := deadletter.New(deadletter.Config{
		Adapter: adapter,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}

	tried := make(chan struct{})
	err = bus.Handle("index_patient", "patient.registered",
		func(ctx context.Context, ev core.Event) error {
			defer close(tried)
			return core.Permanent(errors.New(`ward "X9" is unknown`))
		})
	if err != nil {
		panic(err)
	}

	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan error)
	go func() { stopped <- bus.Run(ctx) }()
	<-bus.Running()

	ev, err := core.NewEvent("patient.registered", "patient", patientID,
		map[string]string{"ward": "X9"})
	if err != nil {
		panic(err)
	}
	if err := bus.Publish(ctx, ev); err != nil {
		panic(err)
	}

	// Stopping the bus waits for running handlers, so the entry is written
	// once Run returns.
	<-tried
	stop()
	if err := <-stopped; err != nil {
		panic(err)
	}

	entries, err := bus.DLQ().List(context.Background(), core.ListOptions{Limit: 10})
	if err != nil {
		panic(err)
	}
	entry := entries[0]
	published, err := ev.Marshal()
	if err != nil {
		panic(err)
	}
	fmt.Println("entries:", len(entries))
	fmt.Println("handler:", entry.Handler)
	fmt.Println("error:", entry.Error)
	fmt.Println("error type:", entry.ErrorType)
	fmt.Println("attempts:", entry.Attempts)
	fmt.Println("event:", entry.EventType, entry.AggregateID)
	fmt.Println("event data unchanged:", bytes.Equal(entry.EventData, published))

	// Output:
	// entries: 1
	// handler: index_patient
	// error: ward "X9" is unknown
	// error type: permanent
	// attempts: 1
	// event: patient.registered 0b6c1f0e-8a8e-4a43-9a53-0c6f2d9b7d11
	// event data unchanged: true
}
