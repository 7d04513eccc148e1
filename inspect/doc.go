// Package inspect reads a dead letter queue in pages, never whole: it walks
// entries newest first, selects them by handler, event type, error group,
// age or id, counts them by event type, handler and error group, and
// normalises error messages so that the failures of one outage form one
// group.
//
// The monitor, the replay package and the deadletter command build on it.
// It works on any core.DLQ.
package inspect
