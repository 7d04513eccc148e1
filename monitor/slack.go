package monitor

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// SlackSink posts alerts to a Slack incoming webhook.
type SlackSink struct {
	// WebhookURL is the incoming webhook's URL. It is a secret and never
	// appears in errors or logs. Required.
	WebhookURL string

	// Client sends the requests. nil means a client with a timeout of
	// DefaultSendTimeout (10 s).
	Client *http.Client
}

// Name returns "slack".
func (s *SlackSink) Name() string { return "slack" }

// Send posts the alert as a message whose first line is the title.
func (s *SlackSink) Send(ctx context.Context, a Alert) error {
	if s.WebhookURL == "" {
		return fmt.Errorf("slack: webhook URL is missing")
	}
	return postJSON(ctx, s.Client, s.Name(), s.WebhookURL, map[string]string{"text": slackText(a)})
}

func slackText(a Alert) string {
	icon := map[Level]string{LevelOK: ":white_check_mark:", LevelWarning: ":warning:", LevelCritical: ":rotating_light:"}[a.Level]
	var b strings.Builder
	fmt.Fprintf(&b, "%s *%s*", icon, a.Title())
	for _, line := range a.Details() {
		b.WriteString("\n• ")
		b.WriteString(line)
	}
	return b.String()
}
