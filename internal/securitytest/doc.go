// Package securitytest holds the security checks that span packages. Its
// tests plant unique markers in event payloads, message metadata, broker
// passwords and alert secrets. They run failing handlers, the monitor and
// the CLI on Redis and on NATS servers that require a password. A test
// fails when a marker shows up in a log line, an error, an alert or the
// CLI's output where it has no place. Other tests check that the embedded
// broker listens on loopback only.
//
// The package has no code of its own besides this comment.
package securitytest
