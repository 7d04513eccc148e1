// Package bench measures what deadletter costs on its happy path, next to
// baselines in the same process: go-redis alone, watermill-redisstream under
// a Watermill router, and nats.go alone. It also measures head-of-line
// blocking while some events fail, replay throughput and peak memory.
//
// Every case publishes events whose data carries the publish time in
// nanoseconds, so a handler computes the end-to-end latency of each event.
// A publisher keeps at most Config.Window events published and not yet
// handled, so the latencies are those of a saturated pipeline whose queue
// is bounded by the window.
//
// The cases run against real servers and create keys and streams under a
// prefix unique to the run, which they delete when they finish.
package bench
