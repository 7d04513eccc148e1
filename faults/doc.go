// Package faults holds the fault tests of deadletter. They stop a consumer
// process with SIGKILL or SIGTERM and restart it, cancel a bus while its
// handlers run, make the DLQ reject writes for a while, let handlers hang
// past their timeout, restart the broker while events flow, and check for
// goroutine leaks.
//
// The tests are behind the build tag "faults", and scripts/faults runs
// them. This package's own code is the consumer that the tests start as a
// child process.
package faults
