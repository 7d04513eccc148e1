package conformance_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/deadletter/deadletter/conformance"
	"github.com/deadletter/deadletter/core"
)

// brokenSubscriberAdapter wraps an adapter so that every message its
// subscribers deliver passes through deliver first.
type brokenSubscriberAdapter struct {
	core.Adapter
	deliver func(msg *message.Message, out chan<- *message.Message, done <-chan struct{})
}

func (a brokenSubscriberAdapter) Subscriber(handler string) (message.Subscriber, error) {
	inner, err := a.Adapter.Subscriber(handler)
	if err != nil {
		return nil, err
	}
	return &brokenSubscriber{Subscriber: inner, deliver: a.deliver, done: make(chan struct{})}, nil
}

type brokenSubscriber struct {
	message.Subscriber
	deliver func(msg *message.Message, out chan<- *message.Message, done <-chan struct{})

	closeOnce sync.Once
	done      chan struct{}
}

func (s *brokenSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	in, err := s.Subscriber.Subscribe(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := make(chan *message.Message)
	go func() {
		defer close(out)
		for msg := range in {
			s.deliver(msg, out, s.done)
		}
	}()
	return out, nil
}

func (s *brokenSubscriber) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	return s.Subscriber.Close()
}

// resetDeliveryCount reports every delivery as the first, so that the
// middleware never finds the retries spent.
func resetDeliveryCount(msg *message.Message, out chan<- *message.Message, done <-chan struct{}) {
	msg.Metadata.Set(core.MetadataDeliveryCount, "1")
	select {
	case out <- msg:
	case <-done:
		msg.Nack()
	}
}

// dropNacked acknowledges a message whose handler nacked it, so that a
// nacked message is never delivered again.
func dropNacked(msg *message.Message, out chan<- *message.Message, done <-chan struct{}) {
	forwarded := msg.Copy()
	forwarded.SetContext(msg.Context())
	select {
	case out <- forwarded:
	case <-done:
		msg.Nack()
		return
	}
	go func() {
		select {
		case <-forwarded.Acked():
		case <-forwarded.Nacked():
		case <-done:
			msg.Nack()
			return
		}
		msg.Ack()
	}()
}

// oldestFirstAdapter wraps an adapter so that its DLQ lists entries oldest
// first.
type oldestFirstAdapter struct{ core.Adapter }

func (a oldestFirstAdapter) DLQ() core.DLQ { return oldestFirstDLQ{a.Adapter.DLQ()} }

type oldestFirstDLQ struct{ core.DLQ }

func (d oldestFirstDLQ) List(ctx context.Context, opts core.ListOptions) ([]core.Entry, error) {
	entries, err := d.DLQ.List(ctx, opts)
	slices.Reverse(entries)
	return entries, err
}

// withoutCapabilities wraps an adapter so that it declares no capability.
type withoutCapabilities struct{ core.Adapter }

func (withoutCapabilities) Capabilities() core.Capabilities { return core.Capabilities{} }

// findContract returns the named contract, failing t if there is none.
func findContract(t *testing.T, name string) conformance.Contract {
	t.Helper()
	for _, c := range conformance.Contracts() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no contract named %q", name)
	return conformance.Contract{}
}

// wrapped returns a config whose adapters are memory adapters wrapped by
// wrap, with a short timeout so that broken contracts fail fast.
func wrapped(wrap func(core.Adapter) core.Adapter) conformance.Config {
	return conformance.Config{
		NewAdapter: func(t testing.TB) core.Adapter { return wrap(newMemoryAdapter(t)) },
		Timeout:    time.Second,
	}
}

func TestBrokenAdapterFailsContract(t *testing.T) {
	cases := []struct {
		name     string
		wrap     func(core.Adapter) core.Adapter
		contract string
		message  string
	}{
		{
			name: "DeliveryCountReset",
			wrap: func(a core.Adapter) core.Adapter {
				return brokenSubscriberAdapter{Adapter: a, deliver: resetDeliveryCount}
			},
			contract: "RetriesFollowPolicyThenDeadLetter",
			message:  "must reach the DLQ after 4 attempts",
		},
		{
			name: "NackedMessageDropped",
			wrap: func(a core.Adapter) core.Adapter {
				return brokenSubscriberAdapter{Adapter: a, deliver: dropNacked}
			},
			contract: "SuccessfulRetryLeavesNoEntry",
			message:  "must get a third attempt; it ran 1 times",
		},
		{
			name: "NackedMessageDroppedAfterFailedDLQWrite",
			wrap: func(a core.Adapter) core.Adapter {
				return brokenSubscriberAdapter{Adapter: a, deliver: dropNacked}
			},
			contract: "FailedDLQWriteDeliversEventAgain",
			message:  "must be delivered again until the write succeeds",
		},
		{
			name:     "DLQListedOldestFirst",
			wrap:     func(a core.Adapter) core.Adapter { return oldestFirstAdapter{a} },
			contract: "DLQListsNewestFirstInPages",
			message:  "must return every entry newest first",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			contract := findContract(t, tc.contract)
			cfg := wrapped(tc.wrap)

			r := runRecorded(t, func(tb testing.TB) { contract.Check(tb, cfg) })

			if !r.Failed() {
				t.Fatalf("contract %s must fail on this adapter, but it passed", tc.contract)
			}
			if !strings.Contains(r.output(), tc.message) {
				t.Errorf("contract %s must fail stating %q; it reported:\n%s", tc.contract, tc.message, r.output())
			}
		})
	}
}

func TestContractPassesOnRecorder(t *testing.T) {
	contract := findContract(t, "RetriesFollowPolicyThenDeadLetter")
	cfg := conformance.Config{NewAdapter: newMemoryAdapter}

	r := runRecorded(t, func(tb testing.TB) { contract.Check(tb, cfg) })
	if r.Failed() || r.Skipped() {
		t.Fatalf("contract %s must pass on the memory adapter; it reported:\n%s", contract.Name, r.output())
	}
}

func TestMissingCapabilitySkipsContract(t *testing.T) {
	cases := map[string]string{
		"PendingRetryDoesNotBlockLaterEvents": "Capabilities.Redelivery",
		"RetryCountSurvivesRestart":           "Capabilities.Durable",
		"CompetingConsumersShareEvents":       "Capabilities.CompetingConsumers",
	}
	cfg := wrapped(func(a core.Adapter) core.Adapter { return withoutCapabilities{a} })
	for name, reason := range cases {
		t.Run(name, func(t *testing.T) {
			contract := findContract(t, name)

			r := runRecorded(t, func(tb testing.TB) { contract.Check(tb, cfg) })

			if !r.Skipped() || r.Failed() {
				t.Fatalf("contract %s must be skipped on an adapter without %s; failed %v, skipped %v:\n%s",
					name, reason, r.Failed(), r.Skipped(), r.output())
			}
			if !strings.Contains(r.output(), reason) {
				t.Errorf("the skip of %s must name %s; it said %q", name, reason, r.output())
			}
		})
	}
}
