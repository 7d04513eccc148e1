// Package deadletter makes event handlers safe to fail. A Bus publishes
// domain events and runs named handlers for them; a handler that fails is
// retried with growing pauses kept by the broker, and an event that still
// fails is parked in a dead letter queue (DLQ) for operators to inspect and
// replay.
//
// The Bus runs on any broker through a core.Adapter: Redis Streams in
// adapters/redisstream and an in-memory broker for tests in
// adapters/memory. Each handler has its own consumer on the broker, so one
// failing handler never holds back or re-runs the others.
package deadletter
