package cli

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/deadletter/deadletter/config"
	"github.com/deadletter/deadletter/monitor"
)

// buildMonitor returns a monitor of b's DLQ with the configured thresholds
// and sinks.
func buildMonitor(cfg config.Config, b *broker, logger *slog.Logger) (*monitor.Monitor, error) {
	mc := cfg.Monitor
	var sinks []monitor.Sink
	if mc.SlackWebhookURL != "" {
		sinks = append(sinks, &monitor.SlackSink{WebhookURL: mc.SlackWebhookURL.Value()})
	}
	if mc.PagerDutyRoutingKey != "" {
		level := monitor.LevelCritical
		if mc.PagerDutyLevel == "warning" {
			level = monitor.LevelWarning
		}
		sinks = append(sinks, &monitor.PagerDutySink{
			RoutingKey: mc.PagerDutyRoutingKey.Value(),
			URL:        cmp.Or(mc.PagerDutyURL, monitor.DefaultPagerDutyURL),
			Level:      level,
		})
	}
	if mc.WebhookURL != "" {
		sinks = append(sinks, &monitor.WebhookSink{URL: mc.WebhookURL.Value()})
	}

	// The capacity warning follows the DLQ's own cap unless set apart.
	capacity := mc.Capacity
	if capacity == 0 {
		capacity = cfg.DLQ.MaxLen
	}
	return monitor.New(monitor.Config{
		DLQ:               b.dlq(),
		Source:            b.source,
		Interval:          mc.Interval,
		WarningThreshold:  mc.Warning,
		CriticalThreshold: mc.Critical,
		Capacity:          capacity,
		CapacityRatio:     mc.CapacityRatio,
		Window:            mc.Window,
		Sinks:             sinks,
		Logger:            logger,
	})
}

func newMonitorCommand(stdout, stderr io.Writer) *cobra.Command {
	var (
		opts brokerOptions
		once bool
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
			cfg, err := opts.load()
			if err != nil {
				return err
			}
			logger := newLogger(stderr, cfg.LogLevel)
			b, err := openBroker(cmd.Context(), cfg, logger, stderr, true)
			if err != nil {
				return err
			}
			defer b.Close()

			m, err := buildMonitor(cfg, b, logger)
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
		},
	}
	opts.addFlags(cmd.Flags())
	opts.addMonitorFlags(cmd.Flags())
	opts.addLogLevelFlag(cmd.Flags())
	cmd.Flags().BoolVar(&once, "once", false, "check once, print the state and exit")
	return cmd
}
