package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/deadletter/deadletter/core"
)

// EnvConfigFile names the YAML file that Load reads when Sources.File is "".
const EnvConfigFile = "DEADLETTER_CONFIG"

// Setting is one raw value of a key and where it came from.
type Setting struct {
	// Key is the key's name, such as "retry.initial".
	Key string

	// Value is the raw value. "" counts as not set.
	Value string

	// Origin names where the value came from in messages, such as
	// "--interval" or "DEADLETTER_RETRY_INITIAL". "" means Key.
	Origin string
}

// Sources are the inputs that Load reads settings from. Each source
// overrides the ones before it: the file, then the environment, then the
// flags.
type Sources struct {
	// File is a YAML file. "" means the file named by DEADLETTER_CONFIG,
	// and no file when that is not set either.
	File string

	// LookupEnv reads an environment variable. nil means os.LookupEnv.
	LookupEnv func(key string) (string, bool)

	// Flags are the settings of command-line flags that were given.
	Flags []Setting
}

// Error is a configuration value that cannot be used. Its message is one
// line that names the key, flag or environment variable, and what is
// allowed; it never shows a secret. It wraps core.ErrInvalidConfig.
type Error struct {
	// Origin names the value: a key of the file, an environment variable
	// or a flag.
	Origin string

	// Reason states what is wrong and what is allowed.
	Reason string
}

func (e *Error) Error() string { return "config: " + e.Origin + ": " + e.Reason }

// Unwrap returns core.ErrInvalidConfig.
func (e *Error) Unwrap() error { return core.ErrInvalidConfig }

// Load builds a Config from the defaults, the file, the environment and
// the flags, each overriding the ones before, and validates it. Unknown
// keys in the file and in Flags are errors; environment variables are
// read by name only, so unrelated ones are ignored.
func Load(src Sources) (Config, error) {
	lookup := src.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	cfg := Config{origins: map[string]string{}}

	file := src.File
	if file == "" {
		file, _ = lookup(EnvConfigFile)
	}
	if file != "" {
		settings, err := readFile(file)
		if err != nil {
			return Config{}, err
		}
		for _, s := range settings {
			if err := cfg.apply(s, s.Key+" in "+filepath.Base(file)); err != nil {
				return Config{}, err
			}
		}
	}

	for _, k := range keys {
		if k.Env == "" {
			continue
		}
		if v, ok := lookup(k.Env); ok {
			if err := cfg.apply(Setting{Key: k.Name, Value: v, Origin: k.Env}, k.Env); err != nil {
				return Config{}, err
			}
		}
	}

	for _, s := range src.Flags {
		if err := cfg.apply(s, s.Origin); err != nil {
			return Config{}, err
		}
	}

	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// apply sets one value and records where it came from.
func (c *Config) apply(s Setting, origin string) error {
	if s.Origin == "" {
		s.Origin = s.Key
	}
	if origin == "" {
		origin = s.Origin
	}
	k, err := lookupKey(s.Key)
	if err != nil {
		return &Error{Origin: s.Origin, Reason: err.Error()}
	}
	value := strings.TrimSpace(s.Value)
	if value == "" {
		return nil
	}
	if err := k.set(c, value); err != nil {
		return &Error{Origin: s.Origin, Reason: err.Error()}
	}
	c.setOrigin(s.Key, origin)
	return nil
}

// label names a key for a message: where it was set, or the key itself
// when it holds its default.
func (c Config) label(key string) string {
	origin := c.origins[key]
	if origin == "" {
		return key
	}
	return origin
}

// readFile reads a YAML file into settings, in the file's order.
func readFile(path string) ([]Setting, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Origin: path, Reason: "cannot be read: " + unwrapPath(err).Error()}
	}
	settings, err := parseYAML(data)
	var cfgErr *Error
	if errors.As(err, &cfgErr) && cfgErr.Origin == "" {
		cfgErr.Origin = path
	}
	if err != nil {
		return nil, err
	}
	return settings, nil
}

// unwrapPath drops the path that os errors repeat.
func unwrapPath(err error) error {
	if pathErr, ok := err.(*os.PathError); ok {
		return pathErr.Err
	}
	return err
}
