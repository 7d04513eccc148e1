package config

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// localRedis is the address at which Choose looks for a Redis server when
// no broker is configured.
const localRedis = "127.0.0.1:6379"

// probeTimeout bounds the connection attempt to localRedis.
const probeTimeout = 300 * time.Millisecond

// Choice is the broker that Choose picked, and why.
type Choice struct {
	// Broker is BrokerRedis, BrokerNATS, BrokerEmbedded or BrokerMemory.
	Broker string

	// Reason explains the choice to people, such as "REDIS_URL is set".
	Reason string

	// Guessed is true when nothing in the configuration named the broker
	// or its server, so the choice depends on what runs on this machine.
	Guessed bool
}

// Choose picks the broker, in this order:
//
//  1. the broker key (--broker, DEADLETTER_BROKER or the file) when it is
//     set and not "auto";
//  2. Redis when any redis key is set, such as REDIS_URL;
//  3. NATS when any nats key is set, such as NATS_URL;
//  4. Redis at 127.0.0.1:6379 when a server accepts connections there;
//  5. otherwise the embedded NATS server, storing under DataDir.
//
// An address that the configuration gives wins over one that is guessed,
// and Redis wins when both are given.
func Choose(ctx context.Context, cfg Config) Choice {
	return cfg.choose(ctx, dialable)
}

func (c Config) choose(ctx context.Context, probe func(context.Context, string) bool) Choice {
	if c.Broker != "" && c.Broker != BrokerAuto {
		return Choice{Broker: c.Broker, Reason: "set by " + c.label("broker")}
	}

	redisKey, natsKey := c.firstSet("redis."), c.firstSet("nats.")
	switch {
	case redisKey != "" && natsKey != "":
		return Choice{Broker: BrokerRedis, Reason: c.label(redisKey) + " is set; " + c.label(natsKey) +
			" is set too, so choose with --broker or DEADLETTER_BROKER"}
	case redisKey != "":
		return Choice{Broker: BrokerRedis, Reason: c.label(redisKey) + " is set"}
	case natsKey != "":
		return Choice{Broker: BrokerNATS, Reason: c.label(natsKey) + " is set"}
	case probe(ctx, localRedis):
		return Choice{Broker: BrokerRedis, Guessed: true,
			Reason: "no broker is configured and Redis answers on " + localRedis}
	}
	return Choice{Broker: BrokerEmbedded, Guessed: true,
		Reason: "no broker is configured and nothing answers on " + localRedis}
}

// firstSet returns the first key under prefix that was set, in the order
// of Keys.
func (c Config) firstSet(prefix string) string {
	for _, k := range keys {
		if strings.HasPrefix(k.Name, prefix) && c.origins[k.Name] != "" {
			return k.Name
		}
	}
	return ""
}

// dialable reports whether a TCP server accepts connections at addr.
func dialable(ctx context.Context, addr string) bool {
	dialer := net.Dialer{Timeout: probeTimeout}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// DefaultDataDir returns where the embedded broker stores its streams when
// DataDir is not set: $XDG_DATA_HOME/deadletter, or
// ~/.local/share/deadletter when XDG_DATA_HOME is not set.
func DefaultDataDir() (string, error) {
	if dir := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(dir) {
		return filepath.Join(dir, "deadletter"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return "", errors.New("no home directory to store the embedded broker's data; set DEADLETTER_DATA_DIR")
	}
	return filepath.Join(home, ".local", "share", "deadletter"), nil
}
