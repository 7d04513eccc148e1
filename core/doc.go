// Package core defines the types that every part of deadletter shares: the
// domain event and its JSON form, the retry policy, the error kinds a handler
// can return, the dead letter entry, and the interfaces that broker adapters
// implement.
//
// Applications rarely need more from this package than Event, Policy and the
// error constructors Permanent, RetryAfter and Skip. Adapter authors implement
// Adapter and DLQ and honour the message metadata contract described on
// MetadataDeliveryCount.
package core
