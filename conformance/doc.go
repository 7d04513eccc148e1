// Package conformance is the test suite that every deadletter adapter must
// pass. An adapter's own _test.go calls Run with a Config that creates
// isolated adapters on a real broker:
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, conformance.Config{
//			NewAdapter: func(t testing.TB) core.Adapter { ... },
//		})
//	}
//
// Run first runs Watermill's own publisher and subscriber suite on the
// adapter, then deadletter's contracts, one subtest each: retries and their
// pauses, the dead letter entry, the DLQ's read and move operations, handler
// isolation, restarts, competing consumers and undecodable input. Each
// failure message states the contract that was broken. A contract that
// needs a capability the adapter does not declare is skipped with the name
// of that capability.
//
// Contracts returns the same contracts as values, so that a single one can
// be run on its own or against a recording testing.TB.
package conformance
