// Package inspect reads a dead letter queue in pages, never whole. It walks
// entries newest first and selects them by handler, event type, error group,
// age or id. It counts them by event type, handler and error group, and
// normalises error messages so that the failures of one outage form one
// group.
//
// The monitor, the replay package and the deadletter command build on it.
// It works on any core.DLQ.
package inspect
