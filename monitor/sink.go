package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/deadletter/deadletter/internal/redact"
)

// Sink receives alerts. Send must return once the alert is delivered or has
// failed; the monitor calls it again at the next check after a failure.
type Sink interface {
	// Name identifies the sink in logs, for example "slack".
	Name() string

	// Send delivers one alert.
	Send(ctx context.Context, a Alert) error
}

// LevelFilter is implemented by a sink that wants only alerts of at least
// one level. The monitor sends it lower levels as LevelOK, so it receives a
// resolve when the DLQ falls below its level.
type LevelFilter interface {
	MinLevel() Level
}

// DefaultSendTimeout bounds one HTTP request of a sink.
const DefaultSendTimeout = 10 * time.Second

// maxErrorBody is how much of a failed response's body a sink error quotes.
const maxErrorBody = 200

// postJSON posts body as JSON and fails on a status outside 2xx. Its errors
// never name the URL, because webhook URLs hold secrets.
func postJSON(ctx context.Context, client *http.Client, sink, target string, body any) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("%s: encode alert: %w", sink, err)
	}
	if client == nil {
		client = &http.Client{Timeout: DefaultSendTimeout}
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("%s: build request: %w", sink, redact.URLError(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "deadletter-monitor")

	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: post alert: %w", sink, redact.URLError(err))
	}
	defer resp.Body.Close()

	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s: post alert: status %d: %s", sink, resp.StatusCode,
			strings.TrimSpace(string(snippet)))
	}
	return nil
}
