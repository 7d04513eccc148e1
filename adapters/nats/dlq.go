package nats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/deadletter/deadletter/core"
)

// deletedKey is the counter, in the DLQ counters bucket, of the entries
// removed by Delete and MoveToReplayed. Dropped subtracts it.
const deletedKey = "deleted"

// listWindow is how many messages List reads at once.
const listWindow = 32

// DLQ is the dead letter queue on JetStream. Each entry is one message on
// the subject "<prefix>.dlq" of the stream "<PREFIX>_DLQ": the event's JSON
// as the data and the other fields as headers. Its id is the stream
// sequence. Replayed entries move to the stream "<PREFIX>_DLQ_REPLAYED", on
// the subject "<prefix>.dlq.replayed.<id>".
type DLQ struct {
	js jetstream.JetStream
	// events is the events stream, whose consumers a replay looks up.
	events   jetstream.Stream
	names    names
	stream   jetstream.Stream
	replayed jetstream.Stream
	counters jetstream.KeyValue

	// recreate creates the DLQ stream again after it was deleted.
	recreate func(context.Context) error
}

var _ core.DLQ = (*DLQ)(nil)

// newDLQ creates the DLQ streams and counters bucket, or updates their
// limits.
func (a *Adapter) newDLQ(ctx context.Context) (*DLQ, error) {
	dlqConfig := jetstream.StreamConfig{
		Name:        a.names.dlqStream,
		Description: "deadletter dead letter queue",
		Subjects:    []string{a.names.dlqSubject},
		MaxMsgs:     a.cfg.DLQMaxLen,
		AllowDirect: true,
	}
	stream, err := a.ensureStream(ctx, dlqConfig)
	if err != nil {
		return nil, err
	}
	replayed, err := a.ensureStream(ctx, jetstream.StreamConfig{
		Name:        a.names.replayedStream,
		Description: "deadletter dead letter entries that were replayed, one subject per DLQ id",
		Subjects:    []string{a.names.replayedSubject + ">"},
		MaxMsgs:     a.cfg.ReplayedMaxLen,
		// No limit per subject: when the DLQ stream is deleted and
		// created again, its ids start again at 1, and the copy of a new
		// entry must not drop the copy of an old one with the same id.
		AllowDirect: true,
	})
	if err != nil {
		return nil, err
	}
	counters, err := a.ensureBucket(ctx)
	if err != nil {
		return nil, err
	}
	recreate := func(ctx context.Context) error {
		_, err := a.ensureStream(ctx, dlqConfig)
		return err
	}
	return &DLQ{js: a.js, events: a.events, names: a.names, stream: stream, replayed: replayed,
		counters: counters, recreate: recreate}, nil
}

func (a *Adapter) ensureBucket(ctx context.Context) (jetstream.KeyValue, error) {
	bucket := a.names.countersBucket
	kv, err := a.js.KeyValue(ctx, bucket)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("read key-value bucket %s: %w", bucket, err)
	}

	storage := jetstream.FileStorage
	if a.cfg.MemoryStorage {
		storage = jetstream.MemoryStorage
	}
	kv, err = a.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "deadletter DLQ counters",
		Storage:     storage,
		Replicas:    a.cfg.Replicas,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = a.js.KeyValue(ctx, bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("create key-value bucket %s: %w", bucket, err)
	}
	return kv, nil
}

// Add publishes the entry and returns its stream sequence as its id. At
// DLQMaxLen the stream drops its oldest entry, which Dropped counts. Fields
// too long for the header limit and event data too large for the server's
// max payload are cut, with a note of their whole length.
func (q *DLQ) Add(ctx context.Context, e core.Entry) (string, error) {
	id, _, err := q.addOnce(ctx, e, "")
	return id, err
}

// addOnce adds e as Add does. A msgID other than "" becomes the JetStream
// message id, and the DLQ stream drops a second write with the same id
// within its duplicate window, 2 minutes by default. duplicate reports
// such a dropped write.
func (q *DLQ) addOnce(ctx context.Context, e core.Entry, msgID string) (id string, duplicate bool, err error) {
	msg := newEntryMsg(q.names.dlqSubject, e, q.js.Conn().MaxPayload())
	if msgID != "" {
		msg.Header.Set(nats.MsgIdHdr, msgID)
	}

	ack, err := q.js.PublishMsg(ctx, msg)
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		// No stream takes the subject, as after the DLQ stream was
		// deleted, so create it again and write once more. A stream that
		// exists with other subjects is left alone.
		if err := q.recreate(ctx); err != nil {
			return "", false, fmt.Errorf("write dlq entry for handler %q: stream %s takes no entries and "+
				"creating it failed: %w", e.Handler, q.names.dlqStream, err)
		}
		ack, err = q.js.PublishMsg(ctx, msg)
	}
	if err != nil {
		return "", false, fmt.Errorf("write dlq entry for handler %q to stream %s: %w", e.Handler,
			q.names.dlqStream, err)
	}
	return formatID(ack.Sequence), ack.Duplicate, nil
}

// Len returns the number of entries.
func (q *DLQ) Len(ctx context.Context) (int64, error) {
	info, err := q.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("read length of stream %s: %w", q.names.dlqStream, err)
	}
	return int64(info.State.Msgs), nil
}

// List returns entries newest first. It reads the sequences below
// opts.Before in windows, skipping the ones deleted.
func (q *DLQ) List(ctx context.Context, opts core.ListOptions) ([]core.Entry, error) {
	stream, name := q.stream, q.names.dlqStream
	if opts.Replayed {
		stream, name = q.replayed, q.names.replayedStream
	}
	limit := opts.Limit
	if limit == 0 {
		limit = core.DefaultListLimit
	}
	if limit < 0 {
		return nil, fmt.Errorf("%w: list stream %s: Limit %d is negative", core.ErrInvalidConfig, name, limit)
	}

	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("list stream %s: %w", name, err)
	}
	first, upper := info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, nil
	}
	if opts.Before != "" {
		before, ok := parseID(opts.Before)
		if !ok {
			return nil, fmt.Errorf("%w: list stream %s: Before %q is not an entry id", core.ErrInvalidConfig, name,
				opts.Before)
		}
		upper = min(upper, before-1)
	}

	entries := make([]core.Entry, 0, min(limit, int(info.State.Msgs)))
	for upper >= first && upper > 0 && len(entries) < limit {
		lower := max(first, upper-uint64(min(listWindow, upper-first+1))+1)
		window, err := readWindow(ctx, stream, lower, upper)
		if err != nil {
			return nil, fmt.Errorf("list stream %s: %w", name, err)
		}
		for i := len(window) - 1; i >= 0 && len(entries) < limit; i-- {
			if window[i] != nil {
				entries = append(entries, *window[i])
			}
		}
		upper = lower - 1
	}
	return entries, nil
}

// readWindow reads the entries with sequences lower to upper at once; a nil
// entry is a deleted sequence.
func readWindow(ctx context.Context, stream jetstream.Stream, lower, upper uint64) ([]*core.Entry, error) {
	window := make([]*core.Entry, upper-lower+1)
	errs := make([]error, len(window))
	var wg sync.WaitGroup
	for i := range window {
		wg.Go(func() {
			entry, found, err := readEntry(ctx, stream, lower+uint64(i))
			if found {
				window[i] = &entry
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return window, errors.Join(errs...)
}

// Get returns one entry, or an error wrapping core.ErrEntryNotFound.
func (q *DLQ) Get(ctx context.Context, id string) (core.Entry, error) {
	seq, ok := parseID(id)
	if !ok {
		return core.Entry{}, fmt.Errorf("get dlq entry %q: %w", id, core.ErrEntryNotFound)
	}
	entry, found, err := readEntry(ctx, q.stream, seq)
	if err != nil {
		return core.Entry{}, fmt.Errorf("get dlq entry %s: %w", id, err)
	}
	if !found {
		return core.Entry{}, fmt.Errorf("get dlq entry %s from stream %s: %w", id, q.names.dlqStream,
			core.ErrEntryNotFound)
	}
	return entry, nil
}

// Delete removes the entries and returns how many it removed. Ids that are
// unknown or malformed are skipped.
func (q *DLQ) Delete(ctx context.Context, ids ...string) (int, error) {
	removed := 0
	var errs []error
	for _, id := range ids {
		seq, ok := parseID(id)
		if !ok {
			continue
		}
		deleted, err := q.deleteEntry(ctx, seq)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if deleted {
			removed++
		}
	}
	if err := q.countDeleted(ctx, removed); err != nil {
		errs = append(errs, err)
	}
	return removed, errors.Join(errs...)
}

// Dropped returns how many entries the DLQMaxLen cap has removed. The last
// sequence counts every entry ever added; those not in the stream now were
// either deleted, which the counters bucket counts, or dropped. A Delete or
// MoveToReplayed running at the same time can make one reading too high by
// the entries it has removed but not yet counted.
//
// TODO: reset the deleted counter when the DLQ stream is created again.
// The counter outlives a deleted stream, so Dropped then reads too low.
func (q *DLQ) Dropped(ctx context.Context) (int64, error) {
	info, err := q.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("count dropped dlq entries: read stream %s: %w", q.names.dlqStream, err)
	}
	deleted, _, err := q.readDeleted(ctx)
	if err != nil {
		return 0, fmt.Errorf("count dropped dlq entries: %w", err)
	}
	dropped := int64(info.State.LastSeq) - int64(info.State.Msgs) - deleted
	return max(dropped, 0), nil
}

// deleteEntry deletes one message of the DLQ stream and reports whether it
// was there.
func (q *DLQ) deleteEntry(ctx context.Context, seq uint64) (bool, error) {
	err := q.stream.DeleteMsg(ctx, seq)
	if err == nil {
		return true, nil
	}
	// The server reports a missing sequence only as text, so look the
	// sequence up to tell "already gone" from a failed delete.
	if _, getErr := q.stream.GetMsg(ctx, seq); errors.Is(getErr, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	return false, fmt.Errorf("delete dlq entry %d from stream %s: %w", seq, q.names.dlqStream, err)
}

// countDeleted adds n to the deleted counter with compare-and-set, so that
// processes deleting at the same time do not lose counts.
func (q *DLQ) countDeleted(ctx context.Context, n int) error {
	if n == 0 {
		return nil
	}
	for {
		current, revision, err := q.readDeleted(ctx)
		if err != nil {
			return fmt.Errorf("count deleted dlq entries: %w", err)
		}
		value := []byte(strconv.FormatInt(current+int64(n), 10))
		if revision == 0 {
			_, err = q.counters.Create(ctx, deletedKey, value)
		} else {
			_, err = q.counters.Update(ctx, deletedKey, value, revision)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongLastSequence(err) {
			return fmt.Errorf("count deleted dlq entries: %w", err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("count deleted dlq entries: %w", ctx.Err())
		}
	}
}

// readDeleted returns the deleted counter and its revision, 0 when it was
// never written.
func (q *DLQ) readDeleted(ctx context.Context) (int64, uint64, error) {
	entry, err := q.counters.Get(ctx, deletedKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("read counter %s: %w", deletedKey, err)
	}
	n, err := strconv.ParseInt(string(entry.Value()), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("read counter %s: %w", deletedKey, err)
	}
	return n, entry.Revision(), nil
}

// readEntry reads the message at seq as an entry; found is false when the
// sequence was deleted or never written.
func readEntry(ctx context.Context, stream jetstream.Stream, seq uint64) (entry core.Entry, found bool, err error) {
	raw, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return core.Entry{}, false, nil
	}
	if err != nil {
		return core.Entry{}, false, fmt.Errorf("read message %d: %w", seq, err)
	}
	entry, err = parseEntryMsg(seq, raw)
	if err != nil {
		return core.Entry{}, false, err
	}
	return entry, true, nil
}

// parseEntryMsg rebuilds the entry stored as raw, as far as its headers
// allow: an entry written by another tool with headers missing or
// malformed is still listed, shown and deletable. A header that cannot be
// unescaped is kept as it is.
func parseEntryMsg(seq uint64, raw *jetstream.RawStreamMsg) (core.Entry, error) {
	fields := make(map[string]string, len(raw.Header)+1)
	for key, values := range raw.Header {
		if strings.HasPrefix(key, natsHeaderPrefix) || len(values) == 0 {
			continue
		}
		fields[key] = unescapeOrKeep(values[0])
	}
	fields[core.FieldEventData] = string(raw.Data)
	entry, _ := core.ParseEntry(formatID(seq), fields)
	return entry, nil
}

// setEntryHeaders sets every field but event_data as a header, cutting
// long values as setHeaders does.
func setEntryHeaders(msg *nats.Msg, fields []string) {
	headers := make([]string, 0, len(fields))
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i] != core.FieldEventData {
			headers = append(headers, fields[i], fields[i+1])
		}
	}
	setHeaders(msg, headers)
}

func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

func formatID(seq uint64) string { return strconv.FormatUint(seq, 10) }

// parseID returns the stream sequence of an entry id.
func parseID(id string) (uint64, bool) {
	seq, err := strconv.ParseUint(id, 10, 64)
	return seq, err == nil && seq > 0
}
