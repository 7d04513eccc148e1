// Package faults holds the fault tests of deadletter. Each one introduces a
// fault while events flow and checks that no event is lost:
//   - a consumer process stopped with SIGKILL or SIGTERM, then restarted;
//   - a bus cancelled while its handlers run;
//   - a DLQ that rejects writes for a while;
//   - handlers that hang past their timeout;
//   - a broker stopped and started again.
//
// A last test checks for goroutine leaks. The tests are behind the build
// tag "faults", and scripts/faults runs them. This package's own code is
// the consumer that the tests start as a child process.
package faults
