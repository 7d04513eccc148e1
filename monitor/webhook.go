package monitor

import (
	"context"
	"fmt"
	"net/http"
)

// WebhookSink posts each alert as JSON, the Alert type's encoding plus a
// "title" and "status" ("firing" or "resolved"), to a URL.
type WebhookSink struct {
	// URL receives the alerts. Treat it as a secret: it never appears in
	// errors or logs. Required.
	URL string

	// Client sends the requests. nil means a client with a timeout of
	// DefaultSendTimeout (10 s).
	Client *http.Client
}

// webhookBody is the JSON a WebhookSink posts.
type webhookBody struct {
	Alert
	Status  string   `json:"status"`
	Title   string   `json:"title"`
	Details []string `json:"details"`
}

// Name returns "webhook".
func (s *WebhookSink) Name() string { return "webhook" }

// Send posts the alert.
func (s *WebhookSink) Send(ctx context.Context, a Alert) error {
	if s.URL == "" {
		return fmt.Errorf("webhook: URL is missing")
	}
	status := "firing"
	if a.Resolved {
		status = "resolved"
	}
	return postJSON(ctx, s.Client, s.Name(), s.URL, webhookBody{Alert: a, Status: status, Title: a.Title(), Details: a.Details()})
}
