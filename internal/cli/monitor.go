package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/deadletter/deadletter/inspect"
	"github.com/deadletter/deadletter/monitor"
)

// monitorOptions are the monitor's thresholds and sinks, shared by the
// monitor and serve commands. Sink secrets default to environment
// variables so that they stay out of the process list.
type monitorOptions struct {
	interval       time.Duration
	warning        int
	critical       int
	capacity       int64
	capacityRatio  float64
	window         int
	slackURL       string
	pagerDutyKey   string
	pagerDutyURL   string
	pagerDutyLevel string
	webhookURL     string
}

func (o *monitorOptions) addFlags(flags *pflag.FlagSet) {
	flags.DurationVar(&o.interval, "interval", monitor.DefaultInterval, "pause between two checks")
	flags.IntVar(&o.warning, "warning", monitor.DefaultWarningThreshold, "warn above this many entries; -1 turns it off")
	flags.IntVar(&o.critical, "critical", monitor.DefaultCriticalThreshold,
		"raise a critical alert above this many entries; -1 turns it off")
	flags.Int64Var(&o.capacity, "capacity", monitor.DefaultCapacity,
		"the DLQ's size cap, to warn before entries are dropped; -1 turns it off")
	flags.Float64Var(&o.capacityRatio, "capacity-ratio", monitor.DefaultCapacityRatio,
		"share of --capacity at which to warn")
	flags.IntVar(&o.window, "window", inspect.DefaultWindow, "newest entries counted by handler and event type")
	flags.StringVar(&o.slackURL, "slack-webhook-url", os.Getenv("DEADLETTER_SLACK_WEBHOOK_URL"),
		"Slack incoming webhook for alerts (default from DEADLETTER_SLACK_WEBHOOK_URL)")
	flags.StringVar(&o.pagerDutyKey, "pagerduty-routing-key", os.Getenv("DEADLETTER_PAGERDUTY_ROUTING_KEY"),
		"PagerDuty Events API v2 routing key (default from DEADLETTER_PAGERDUTY_ROUTING_KEY)")
	flags.StringVar(&o.pagerDutyURL, "pagerduty-url", monitor.DefaultPagerDutyURL, "PagerDuty Events API endpoint")
	flags.StringVar(&o.pagerDutyLevel, "pagerduty-level", "critical",
		"lowest level that pages: warning or critical")
	flags.StringVar(&o.webhookURL, "webhook-url", os.Getenv("DEADLETTER_WEBHOOK_URL"),
		"URL that receives each alert as JSON (default from DEADLETTER_WEBHOOK_URL)")
}

// hide marks the secret flags' defaults as hidden in help, so that help
// output does not print a secret taken from the environment.
func (o *monitorOptions) hideSecrets(flags *pflag.FlagSet) {
	for _, name := range []string{"slack-webhook-url", "pagerduty-routing-key", "webhook-url"} {
		if f := flags.Lookup(name); f != nil {
			f.DefValue = ""
		}
	}
}

// build returns a monitor of b's DLQ with the configured sinks.
func (o *monitorOptions) build(b *broker, logger *slog.Logger) (*monitor.Monitor, error) {
	var sinks []monitor.Sink
	if o.slackURL != "" {
		sinks = append(sinks, &monitor.SlackSink{WebhookURL: o.slackURL})
	}
	if o.pagerDutyKey != "" {
		level := monitor.LevelCritical
		switch o.pagerDutyLevel {
		case "critical":
		case "warning":
			level = monitor.LevelWarning
		default:
			return nil, fmt.Errorf("invalid --pagerduty-level %q: use warning or critical", o.pagerDutyLevel)
		}
		sinks = append(sinks, &monitor.PagerDutySink{RoutingKey: o.pagerDutyKey, URL: o.pagerDutyURL, Level: level})
	}
	if o.webhookURL != "" {
		sinks = append(sinks, &monitor.WebhookSink{URL: o.webhookURL})
	}
	if o.interval <= 0 {
		return nil, fmt.Errorf("invalid --interval %s: it must be above 0", o.interval)
	}
	if o.window == 0 {
		return nil, fmt.Errorf("invalid --window 0: use a positive count, or -1 for every entry")
	}

	return monitor.New(monitor.Config{
		DLQ:               b.dlq(),
		Source:            b.source,
		Interval:          o.interval,
		WarningThreshold:  o.warning,
		CriticalThreshold: o.critical,
		Capacity:          o.capacity,
		CapacityRatio:     o.capacityRatio,
		Window:            o.window,
		Sinks:             sinks,
		Logger:            logger,
	})
}

func newMonitorCommand(stdout, stderr io.Writer) *cobra.Command {
	var (
		brokerOpts brokerOptions
		mo         monitorOptions
		once       bool
		logLevel   string
	)
	cmd := &cobra.Command{
		Use:   "monitor",
		Short: "Check the DLQ at an interval and send alerts to the log, Slack, PagerDuty or a webhook",
		Long: "monitor checks the DLQ every --interval. It warns above --warning entries, raises a\n" +
			"critical alert above --critical entries naming the newest failed event types and the\n" +
			"failing handlers, warns when the DLQ nears its size cap or drops entries, and sends a\n" +
			"resolve once the DLQ is back under --warning. Alerts are logged on stderr and sent to each\n" +
			"sink configured; an unchanged state is not sent again. --once checks once and prints the\n" +
			"state; it sends alerts but no resolve, since it has no memory of earlier runs.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(stderr, logLevel)
			if err != nil {
				return err
			}
			return withBroker(cmd.Context(), brokerOpts, stderr, func(b *broker) error {
				m, err := mo.build(b, logger)
				if err != nil {
					return err
				}
				if !once {
					return m.Run(cmd.Context())
				}
				alert, err := m.Check(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "%s: %s, %d entries\n", b.source, alert.Level, alert.Entries)
				return nil
			})
		},
	}
	brokerOpts.addFlags(cmd.Flags())
	mo.addFlags(cmd.Flags())
	mo.hideSecrets(cmd.Flags())
	cmd.Flags().BoolVar(&once, "once", false, "check once, print the state and exit")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "lowest level of log lines on stderr: debug, info, warn or error")
	return cmd
}
