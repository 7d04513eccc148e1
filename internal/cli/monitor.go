package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/deadletter/deadletter/config"
	"github.com/deadletter/deadletter/monitor"
)

// buildMonitor returns a monitor of b's DLQ with the configured thresholds
// and sinks. onCheck, when set, is called after each check of Run.
func buildMonitor(cfg config.Config, b *broker, logger *slog.Logger,
	onCheck func(monitor.Alert, error)) (*monitor.Monitor, error) {
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
		OnCheck:           onCheck,
	})
}

// Exit codes of monitor --once, as monitoring checks commonly use them. A
// failed check exits with 1 like any other error.
const (
	exitWarning  = 2
	exitCritical = 3
)

func newMonitorCommand(stdout, stderr io.Writer) *cobra.Command {
	var (
		opts   brokerOptions
		once   bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "monitor",
		Short: "Check the DLQ at an interval and send alerts to the log, Slack, PagerDuty or a webhook",
		Long: "monitor checks the DLQ every --interval. It warns above --warning entries, raises a\n" +
			"critical alert above --critical entries naming the newest failed event types and the\n" +
			"failing handlers, warns when the DLQ nears its size cap or drops entries, and sends a\n" +
			"resolve once the DLQ is back under --warning. Alerts are logged on stderr and sent to each\n" +
			"sink configured; an unchanged state is not sent again. With --json it also prints each\n" +
			"check's state as one JSON object per line on stdout.\n\n" +
			"--once checks once, prints the state and exits with 0 when ok, 2 at warning, 3 at critical\n" +
			"and 1 when the check failed. It sends alerts but no resolve, since it has no memory of\n" +
			"earlier runs.",
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

			m, err := buildMonitor(cfg, b, logger, func(alert monitor.Alert, err error) {
				if asJSON {
					printCheckJSON(stdout, b.source, alert, err)
				}
			})
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
			if asJSON {
				printCheckJSON(stdout, b.source, alert, nil)
			} else {
				fmt.Fprintf(stdout, "%s: %s, %d entries\n", b.source, alert.Level, alert.Entries)
			}
			switch alert.Level {
			case monitor.LevelCritical:
				return exitStatus(exitCritical)
			case monitor.LevelWarning:
				return exitStatus(exitWarning)
			}
			return nil
		},
	}
	opts.addFlags(cmd.Flags())
	opts.addMonitorFlags(cmd.Flags())
	opts.addLogLevelFlag(cmd.Flags())
	cmd.Flags().BoolVar(&once, "once", false, "check once, print the state and exit with 0 ok, 2 warning, 3 critical")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each check as one JSON object per line")
	return cmd
}

// printCheckJSON prints one check as a line of JSON: the alert, or the
// source and the error of a check that could not read the DLQ.
func printCheckJSON(w io.Writer, source string, alert monitor.Alert, err error) {
	var v any = alert
	if err != nil {
		v = map[string]string{"source": source, "error": err.Error()}
	}
	line, marshalErr := json.Marshal(v)
	if marshalErr != nil {
		line, _ = json.Marshal(map[string]string{"source": source, "error": marshalErr.Error()})
	}
	_, _ = w.Write(append(line, '\n'))
}
