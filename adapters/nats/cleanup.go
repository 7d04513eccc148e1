package nats

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeleteStreams deletes the streams and the key-value bucket that adapters
// with the given prefix create, with every event, retry state and DLQ
// entry in them. Tests use it to leave a shared server as they found it.
func DeleteStreams(ctx context.Context, url, prefix string) error {
	conn, err := nats.Connect(url)
	if err != nil {
		return fmt.Errorf("delete streams of prefix %s: connect: %w", prefix, err)
	}
	defer conn.Close()
	js, err := jetstream.New(conn)
	if err != nil {
		return fmt.Errorf("delete streams of prefix %s: %w", prefix, err)
	}

	n := newNames(prefix)
	var errs []error
	for _, stream := range []string{n.eventsStream, n.dlqStream, n.replayedStream, n.retryStream} {
		if err := js.DeleteStream(ctx, stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			errs = append(errs, fmt.Errorf("delete stream %s: %w", stream, err))
		}
	}
	err = js.DeleteKeyValue(ctx, n.countersBucket)
	if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		errs = append(errs, fmt.Errorf("delete bucket %s: %w", n.countersBucket, err))
	}
	return errors.Join(errs...)
}
