// Package metrics exports Prometheus metrics of handlers, publishing and the
// dead letter queue.
//
// Metrics records, in the application that runs the handlers:
//
//	deadletter_handler_attempts_total{handler,event_type,outcome}
//	deadletter_handler_retries_total{handler,event_type,outcome}
//	deadletter_handler_duration_seconds{handler,event_type}
//	deadletter_dead_lettered_total{handler,event_type,error_type}
//	deadletter_published_events_total{event_type,outcome}
//	deadletter_publish_duration_seconds{event_type}
//
// Outcomes of an attempt are success, skipped, or the error type the
// attempt would be dead-lettered under: failure, permanent, timeout, panic,
// decode. A retry is an attempt after the first, as counted by the broker's
// delivery count.
//
// DLQCollector reads a DLQ at each scrape, for the application or for the
// "deadletter serve" command:
//
//	deadletter_dlq_up
//	deadletter_dlq_entries
//	deadletter_dlq_dropped_total
//	deadletter_dlq_recent_entries_by_handler{handler}
//	deadletter_dlq_recent_entries_by_event_type{event_type}
//
// Wire it into a bus with Metrics.InstrumentAdapter for publishing and
// dead-lettering, and Metrics.Middleware for attempts:
//
//	m, err := metrics.New(metrics.Config{})
//	bus, err := deadletter.New(deadletter.Config{
//		Adapter:           m.InstrumentAdapter(adapter),
//		HandlerMiddleware: []message.HandlerMiddleware{m.Middleware},
//	})
package metrics
