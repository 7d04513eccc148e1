// Package config chooses and configures deadletter's broker, retry
// policies and monitor from one place: a YAML file, environment variables
// and command-line flags, each overriding the ones before, over the
// defaults.
//
//	cfg, err := config.Load(config.Sources{File: "deadletter.yaml"})
//	broker, err := config.Open(ctx, cfg, logger)
//	defer broker.Close()
//	bus, err := deadletter.New(cfg.BusConfig(broker.Adapter, logger))
//	err = bus.Handle("send_email", "patient.registered", sendEmail,
//		cfg.HandlerOptions("send_email")...)
//
// Every key has a dotted name in the file, such as retry.initial, and most
// have an environment variable and a flag; Keys lists them and
// docs/configuration.md describes each. A value that cannot be used, and
// a key that does not exist, fail Load with one line that names the key,
// variable or flag and states what is allowed. Passwords, tokens and webhook
// URLs are of type Secret and ServerURL, which print redacted with fmt,
// log/slog and encoding/json, and messages never quote them.
//
// Open connects to the broker that Choose picks: the one named by the
// broker key, else Redis or NATS when one of their keys is set, else the
// Redis at 127.0.0.1:6379 when it accepts connections, else a NATS server
// embedded in the process that stores its streams under DataDir, so that
// its DLQ outlives the process.
package config
