// Package faults holds the fault tests of deadletter: a consumer process
// stopped with SIGKILL or SIGTERM and restarted, a bus cancelled while handlers run, a
// DLQ that rejects writes for a while, handlers that hang past their
// timeout, a broker stopped and started again while events flow, and a
// goroutine leak check. The tests are behind the build tag "faults", and
// scripts/faults runs them. This package's own code is the consumer that the
// tests start as a child process.
package faults
