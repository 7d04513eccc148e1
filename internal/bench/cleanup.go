package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// cleanupTimeout bounds the deletion of one case's keys and streams.
const cleanupTimeout = time.Minute

// deleteRedisKeys deletes every key that starts with prefix.
func deleteRedisKeys(ctx context.Context, client *redis.Client, prefix string) error {
	var cursor uint64
	for {
		keys, next, err := client.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return fmt.Errorf("list keys %s*: %w", prefix, err)
		}
		if len(keys) > 0 {
			if err := client.Unlink(ctx, keys...).Err(); err != nil {
				return fmt.Errorf("delete %d keys %s*: %w", len(keys), prefix, err)
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// natsStreamPrefixes returns the starts of the names of every stream a case
// with this prefix creates: the adapter's streams and key-value buckets, and
// the raw case's stream.
func natsStreamPrefixes(prefix string) []string {
	upper := strings.ToUpper(prefix)
	return []string{upper + "_", "KV_" + upper + "_"}
}

// deleteNATSStreams deletes every stream whose name starts with one of
// natsStreamPrefixes.
func deleteNATSStreams(ctx context.Context, url, prefix string) error {
	conn, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("connect to nats at %s to delete streams: %w", url, err)
	}
	defer conn.Close()
	js, err := jetstream.New(conn)
	if err != nil {
		return fmt.Errorf("open jetstream to delete streams: %w", err)
	}

	var names []string
	lister := js.StreamNames(ctx)
	for name := range lister.Name() {
		for _, start := range natsStreamPrefixes(prefix) {
			if strings.HasPrefix(name, start) {
				names = append(names, name)
			}
		}
	}
	if err := lister.Err(); err != nil {
		return fmt.Errorf("list nats streams: %w", err)
	}
	for _, name := range names {
		if err := js.DeleteStream(ctx, name); err != nil {
			return fmt.Errorf("delete nats stream %s: %w", name, err)
		}
	}
	return nil
}

// pingNATS checks that a NATS server with JetStream responds at url.
func pingNATS(ctx context.Context, url string) error {
	conn, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		return fmt.Errorf("no nats server at %s (%v); start nats-server -js or set NATS_URL", url, err)
	}
	defer conn.Close()
	js, err := jetstream.New(conn)
	if err != nil {
		return fmt.Errorf("open jetstream at %s: %w", url, err)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("jetstream is not enabled at %s (%v); start nats-server -js", url, err)
	}
	return nil
}
