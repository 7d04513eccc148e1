package monitor

import (
	"context"
	"fmt"
	"net/http"
)

// DefaultPagerDutyURL is the PagerDuty Events API v2 endpoint.
const DefaultPagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

// PagerDutySink triggers and resolves PagerDuty incidents through the
// Events API v2. Every alert of one DLQ uses the alert's DedupKey, so that
// repeated triggers update one incident and a resolve closes it.
type PagerDutySink struct {
	// RoutingKey is the integration key of the PagerDuty service. It is a
	// secret and never appears in errors or logs. Required.
	RoutingKey string

	// URL is the Events API endpoint. "" means DefaultPagerDutyURL.
	URL string

	// Level is the lowest level that triggers an incident; below it the
	// incident is resolved. The zero value means LevelCritical.
	Level Level

	// Client sends the requests. nil means a client with a timeout of
	// DefaultSendTimeout (10 s).
	Client *http.Client
}

// Name returns "pagerduty".
func (s *PagerDutySink) Name() string { return "pagerduty" }

// MinLevel returns the lowest level that triggers an incident.
func (s *PagerDutySink) MinLevel() Level {
	if s.Level == LevelOK {
		return LevelCritical
	}
	return s.Level
}

// pagerDutyEvent is the Events API v2 request body.
type pagerDutyEvent struct {
	RoutingKey  string            `json:"routing_key"`
	EventAction string            `json:"event_action"`
	DedupKey    string            `json:"dedup_key"`
	Payload     *pagerDutyPayload `json:"payload,omitempty"`
}

type pagerDutyPayload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp"`
	Component     string         `json:"component"`
	Group         string         `json:"group"`
	Class         string         `json:"class"`
	CustomDetails map[string]any `json:"custom_details"`
}

// Send triggers an incident for a warning or critical alert and resolves it
// for a resolve.
func (s *PagerDutySink) Send(ctx context.Context, a Alert) error {
	if s.RoutingKey == "" {
		return fmt.Errorf("pagerduty: routing key is missing")
	}
	target := s.URL
	if target == "" {
		target = DefaultPagerDutyURL
	}

	event := pagerDutyEvent{RoutingKey: s.RoutingKey, DedupKey: a.DedupKey, EventAction: "resolve"}
	if !a.Resolved {
		event.EventAction = "trigger"
		event.Payload = &pagerDutyPayload{
			Summary:   a.Title(),
			Source:    a.Source,
			Severity:  a.Level.String(),
			Timestamp: a.CheckedAt.Format("2006-01-02T15:04:05.000Z07:00"),
			Component: "deadletter",
			Group:     "dlq",
			Class:     "dead_letter_queue",
			CustomDetails: map[string]any{
				"entries":            a.Entries,
				"newest_event_types": a.NewestEventTypes,
				"failing_handlers":   a.TopHandlers,
				"top_errors":         a.TopErrors,
				"dropped":            a.Dropped,
				"dropped_new":        a.DroppedNew,
				"near_capacity":      a.NearCapacity,
				"details":            a.Details(),
			},
		}
	}
	return postJSON(ctx, s.Client, s.Name(), target, event)
}
