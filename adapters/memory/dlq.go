package memory

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/deadletter/deadletter/core"
)

// DLQ is an in-memory dead letter queue with a replayed store. It implements
// core.DLQ and is safe for concurrent use.
//
// Entries are kept as flat fields, as a broker stores them, so that times
// read back in UTC with microseconds, as from Redis. Ids are decimal numbers
// that grow with each Add. An entry keeps its id when it moves to the
// replayed store, and both stores order their entries by id.
type DLQ struct {
	maxLen int

	// broker receives replayed events.
	broker *broker

	mu       sync.Mutex
	lastID   uint64
	entries  []storedEntry
	replayed []storedEntry
	dropped  int64
}

var _ core.DLQ = (*DLQ)(nil)

// storedEntry is an entry's fields under its id. Stores keep entries sorted
// by id, oldest first.
type storedEntry struct {
	id     uint64
	fields map[string]string
}

func newDLQ(maxLen int) *DLQ {
	return &DLQ{maxLen: maxLen}
}

// Add stores the entry under a new id, ignoring e.ID, and returns the id.
// When the DLQ then holds more than its cap, the oldest entries are removed
// and counted by Dropped.
func (q *DLQ) Add(ctx context.Context, e core.Entry) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("add dlq entry for handler %q: %w", e.Handler, err)
	}
	fields := fieldMap(e.Fields())

	q.mu.Lock()
	defer q.mu.Unlock()
	q.lastID++
	q.entries = append(q.entries, storedEntry{id: q.lastID, fields: fields})
	if excess := len(q.entries) - q.maxLen; q.maxLen > 0 && excess > 0 {
		q.entries = slices.Delete(q.entries, 0, excess)
		q.dropped += int64(excess)
	}
	return formatID(q.lastID), nil
}

// Len returns the number of entries in the DLQ, not counting the replayed
// store.
func (q *DLQ) Len(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("count dlq entries: %w", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return int64(len(q.entries)), nil
}

// List returns entries newest first from the DLQ, or from the replayed store
// when opts.Replayed is set. It returns an error wrapping
// core.ErrInvalidConfig for a negative limit or a Before that is not an id.
func (q *DLQ) List(ctx context.Context, opts core.ListOptions) ([]core.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list dlq entries: %w", err)
	}
	limit, before, err := listBounds(opts)
	if err != nil {
		return nil, err
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	store := q.entries
	if opts.Replayed {
		store = q.replayed
	}

	// Entries older than before end just below its position, whether or
	// not an entry with that id is still held.
	end, _ := slices.BinarySearchFunc(store, before, compareID)
	entries := make([]core.Entry, 0, min(limit, end))
	for i := end - 1; i >= 0 && len(entries) < limit; i-- {
		e, err := store[i].entry()
		if err != nil {
			return nil, fmt.Errorf("list dlq entries: %w", err)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// Get returns the DLQ entry with the given id. It returns an error wrapping
// core.ErrEntryNotFound when the DLQ does not hold it, also when the entry
// has moved to the replayed store.
func (q *DLQ) Get(ctx context.Context, id string) (core.Entry, error) {
	if err := ctx.Err(); err != nil {
		return core.Entry{}, fmt.Errorf("get dlq entry %s: %w", id, err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()

	i, ok := find(q.entries, id)
	if !ok {
		return core.Entry{}, fmt.Errorf("get dlq entry %q: %w", id, core.ErrEntryNotFound)
	}
	return q.entries[i].entry()
}

// Delete removes the DLQ entries with the given ids and returns how many it
// removed. Ids it does not hold are ignored.
func (q *DLQ) Delete(ctx context.Context, ids ...string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("delete %d dlq entries: %w", len(ids), err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()

	removed := 0
	for _, id := range ids {
		if i, ok := find(q.entries, id); ok {
			q.entries = slices.Delete(q.entries, i, i+1)
			removed++
		}
	}
	return removed, nil
}

// MoveToReplayed moves the entry to the replayed store with its replayed_at
// field set. Moving an entry that is already in the replayed store does
// nothing, so that an interrupted replay can run again. When the replayed
// store then holds more than the cap, its oldest entries are removed. Dropped
// does not count them, because their events were already replayed.
func (q *DLQ) MoveToReplayed(ctx context.Context, id string, replayedAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("move dlq entry %s to the replayed store: %w", id, err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()

	i, waiting, err := q.locate(id)
	if err != nil {
		return fmt.Errorf("move dlq entry %q to the replayed store: %w", id, err)
	}
	if waiting {
		q.moveLocked(i, replayedAt, false)
	}
	return nil
}

// locate returns the index of the entry in the DLQ with waiting true, or
// waiting false when the entry is already in the replayed store, or an error
// wrapping core.ErrEntryNotFound when it is in neither. The caller holds
// q.mu.
func (q *DLQ) locate(id string) (index int, waiting bool, err error) {
	if i, ok := find(q.entries, id); ok {
		return i, true, nil
	}
	if _, ok := find(q.replayed, id); ok {
		return 0, false, nil
	}
	return 0, false, core.ErrEntryNotFound
}

// moveLocked moves the entry at index i to the replayed store. With
// countReplay the moved entry's replay_count includes this replay. The
// caller holds q.mu.
func (q *DLQ) moveLocked(i int, replayedAt time.Time, countReplay bool) {
	moved := q.entries[i]
	moved.fields = maps.Clone(moved.fields)
	moved.fields[core.FieldReplayedAt] = core.FormatTime(replayedAt)
	if countReplay {
		replays, _ := strconv.Atoi(moved.fields[core.FieldReplayCount])
		moved.fields[core.FieldReplayCount] = strconv.Itoa(replays + 1)
	}
	q.entries = slices.Delete(q.entries, i, i+1)

	at, _ := slices.BinarySearchFunc(q.replayed, moved.id, compareID)
	q.replayed = slices.Insert(q.replayed, at, moved)
	if excess := len(q.replayed) - q.maxLen; q.maxLen > 0 && excess > 0 {
		q.replayed = slices.Delete(q.replayed, 0, excess)
	}
}

var _ core.Replayer = (*DLQ)(nil)

// Replay delivers the entry's event again to the handler named in it, and to
// no other, and moves the entry to the replayed store, both under the DLQ's
// lock. Replaying an entry already in the replayed store does nothing.
func (q *DLQ) Replay(ctx context.Context, id string, replayedAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("replay dlq entry %s: %w", id, err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()

	i, waiting, err := q.locate(id)
	if err != nil {
		return fmt.Errorf("replay dlq entry %q: %w", id, err)
	}
	if !waiting {
		return nil
	}
	entry, err := q.entries[i].entry()
	if err != nil {
		return fmt.Errorf("replay dlq entry %s: %w", id, err)
	}
	if entry.Handler == "" {
		return fmt.Errorf("replay dlq entry %s: it names no handler", id)
	}

	topicName, found := strings.CutPrefix(entry.SourceStream, streamName(""))
	if !found || topicName == "" {
		topicName = entry.EventType
	}
	seq, _ := strconv.ParseUint(entry.SourceID, 10, 64)
	rec := &record{
		seq:      seq,
		uuid:     entry.EventID,
		payload:  entry.EventData,
		metadata: message.Metadata{core.MetadataReplayCount: strconv.Itoa(entry.ReplayCount + 1)},
	}
	if err := q.broker.replay(topicName, entry.Handler, rec); err != nil {
		return fmt.Errorf("replay dlq entry %s: %w", id, err)
	}
	q.moveLocked(i, replayedAt, true)
	return nil
}

// Dropped returns how many entries the cap has removed from the DLQ since
// the adapter was created.
func (q *DLQ) Dropped(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("count dropped dlq entries: %w", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped, nil
}

func (s storedEntry) entry() (core.Entry, error) {
	return core.ParseEntry(formatID(s.id), s.fields)
}

// listBounds returns the number of entries to list and the id they must be
// older than.
func listBounds(opts core.ListOptions) (int, uint64, error) {
	limit := opts.Limit
	switch {
	case limit < 0:
		return 0, 0, fmt.Errorf("%w: list dlq entries: limit %d is negative", core.ErrInvalidConfig, limit)
	case limit == 0:
		limit = core.DefaultListLimit
	}

	if opts.Before == "" {
		return limit, ^uint64(0), nil
	}
	before, err := parseID(opts.Before)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: list dlq entries: before %q is not a dlq entry id of the memory adapter",
			core.ErrInvalidConfig, opts.Before)
	}
	return limit, before, nil
}

// find returns the position of the entry with the given id in store.
func find(store []storedEntry, id string) (int, bool) {
	n, err := parseID(id)
	if err != nil {
		return 0, false
	}
	return slices.BinarySearchFunc(store, n, compareID)
}

func compareID(s storedEntry, id uint64) int {
	switch {
	case s.id < id:
		return -1
	case s.id > id:
		return 1
	}
	return 0
}

func formatID(id uint64) string { return strconv.FormatUint(id, 10) }

func parseID(id string) (uint64, error) { return strconv.ParseUint(id, 10, 64) }

// fieldMap turns field and value pairs into a map.
func fieldMap(pairs []string) map[string]string {
	fields := make(map[string]string, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		fields[pairs[i]] = pairs[i+1]
	}
	return fields
}
