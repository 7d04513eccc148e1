package metrics_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDashboardQueriesKnownMetrics keeps the shipped Grafana dashboard in
// step with the metric names.
func TestDashboardQueriesKnownMetrics(t *testing.T) {
	raw, err := os.ReadFile("../docs/grafana-dashboard.json")
	require.NoError(t, err)
	var dashboard struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(raw, &dashboard))
	require.NotEmpty(t, dashboard.Panels)

	known := map[string]bool{
		"deadletter_handler_attempts_total": true, "deadletter_handler_retries_total": true,
		"deadletter_handler_duration_seconds": true, "deadletter_dead_lettered_total": true,
		"deadletter_published_events_total": true, "deadletter_publish_duration_seconds": true,
		"deadletter_dlq_up": true, "deadletter_dlq_entries": true, "deadletter_dlq_dropped_total": true,
		"deadletter_dlq_recent_entries_by_handler": true, "deadletter_dlq_recent_entries_by_event_type": true,
	}
	name := regexp.MustCompile(`deadletter_[a-z_]+`)
	for _, p := range dashboard.Panels {
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, target := range p.Targets {
			for _, metric := range name.FindAllString(target.Expr, -1) {
				metric = strings.TrimSuffix(metric, "_bucket")
				require.True(t, known[metric], "panel %q queries unknown metric %s", p.Title, metric)
			}
		}
	}
}
