// Package memory is an in-memory broker adapter for deadletter. It gives
// unit tests of event handlers the same retry, redelivery and dead letter
// behaviour as a real broker, without one.
//
// Each topic is an event type and keeps a log of its events, trimmed to
// Config.StreamMaxLen. Each handler name is a consumer group on the topics
// it subscribes to. A group starts at the oldest retained event, so a
// handler registered after an event was published still receives it. The
// subscribers of one handler share the group's events, so each event goes
// to one of them.
//
// Subscribers emit messages without waiting for earlier ones to be
// acknowledged. Every message carries core.MetadataDeliveryCount. A nacked
// message is delivered again after the pause in core.MetadataRetryAfter,
// scheduled on a timer so that it holds back no other message, and with the
// retry state keys it was nacked with. A message still unacknowledged when
// its subscriber closes is delivered again at once to another subscriber of
// the same handler.
//
// State lives in the Adapter value: a new Adapter starts empty, so the
// adapter is not Durable. Several Bus values, or a Bus that is closed and
// started again, on one Adapter share its topics, groups and DLQ.
package memory
