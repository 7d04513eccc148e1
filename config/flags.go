package config

import (
	"fmt"

	"github.com/spf13/pflag"
)

// Key groups for Flags.Add.
var (
	// ConnectionKeys choose the broker and set how to reach it.
	ConnectionKeys = []string{
		"broker", "prefix", "data_dir", "redis.url", "redis.username", "redis.tls.ca_file",
		"redis.tls.cert_file", "redis.tls.key_file", "nats.url", "nats.creds_file", "nats.user",
		"nats.tls.ca_file", "nats.tls.cert_file", "nats.tls.key_file", "dlq.max_len",
	}

	// MonitorKeys are the monitor's thresholds and alert sinks.
	MonitorKeys = []string{
		"monitor.interval", "monitor.warning", "monitor.critical", "monitor.capacity",
		"monitor.capacity_ratio", "monitor.window", "monitor.slack_webhook_url",
		"monitor.pagerduty_routing_key", "monitor.pagerduty_url", "monitor.pagerduty_level",
		"monitor.webhook_url",
	}
)

// Flags binds configuration keys to command-line flags. A flag given on
// the command line overrides the environment and the file; a flag left out
// leaves its key to them. The zero value is ready to use.
type Flags struct {
	file   string
	values []*flagValue
}

// AddConfigFlag registers --config, the YAML file to read.
func (f *Flags) AddConfigFlag(fs *pflag.FlagSet) {
	fs.StringVar(&f.file, "config", "", "YAML configuration file (env "+EnvConfigFile+")")
}

// Add registers the flag of each named key. It panics on a name that is
// not a key with a flag, which is a mistake in the calling program.
func (f *Flags) Add(fs *pflag.FlagSet, names ...string) {
	for _, name := range names {
		k, err := lookupKey(name)
		if err != nil || k.Flag == "" {
			panic(fmt.Sprintf("config: no flag for key %q", name))
		}
		v := &flagValue{key: k}
		usage := k.Usage
		if k.Env != "" {
			usage += " (env " + k.Env + ")"
		}
		flag := fs.VarPF(v, k.Flag, "", usage)
		flag.DefValue = k.Default
		if k.Secret {
			flag.DefValue = ""
		}
		f.values = append(f.values, v)
	}
}

// File returns the value of --config.
func (f *Flags) File() string { return f.file }

// Settings returns the settings of the flags that were given.
func (f *Flags) Settings() []Setting {
	var settings []Setting
	for _, v := range f.values {
		if v.set {
			settings = append(settings, Setting{Key: v.key.Name, Value: v.value, Origin: "--" + v.key.Flag})
		}
	}
	return settings
}

// Load reads the configuration from the file of --config, the environment
// and the flags given.
func (f *Flags) Load() (Config, error) {
	return Load(Sources{File: f.file, Flags: f.Settings()})
}

// flagValue keeps a flag's raw text for Load, which parses and checks it
// with the environment's and the file's values.
type flagValue struct {
	key   Key
	value string
	set   bool
}

func (v *flagValue) Set(s string) error {
	v.value, v.set = s, true
	return nil
}

func (v *flagValue) String() string {
	if v.key.Secret {
		return Secret(v.value).String()
	}
	return v.value
}

func (v *flagValue) Type() string {
	if v.key.Type == "secret" || v.key.Type == "url" || v.key.Type == "file" {
		return "string"
	}
	return v.key.Type
}
