// Package replay delivers dead-lettered events again, each to the handler
// that gave up on it and to no other, once the cause is fixed.
//
// Run selects entries by handler, event type, error group, age or id (see
// inspect.Filter), reading the DLQ in pages and keeping only the matches
// without their payloads. It replays them oldest first, at a bounded rate,
// through the DLQ's core.Replayer; a DLQ without one makes Run fail with an
// error wrapping core.ErrNotSupported. A dry run lists the selection and
// replays nothing.
//
// A loop guard refuses entries whose event has already been replayed
// MaxReplayCount times, so that an event that fails on every replay does not
// circle for ever. Running a replay again after an interruption is safe:
// the Replayer moves each entry to the replayed store as it delivers it.
package replay
