// Package monitor watches a dead letter queue and alerts when it fills: a
// warning above 10 entries, a critical alert above 50, a warning when the
// DLQ nears its size cap or drops entries at it. Alerts go to the log and to
// any sinks configured: Slack, PagerDuty and a generic JSON webhook.
//
// An alert is sent when its level changes, when the count grows into a
// higher bucket (10, 20, 50, 100, 200, 500, ...), when the DLQ starts to near
// its cap, or when entries were dropped. It is not sent again at every check
// while nothing changed. When the DLQ drops back under the warning
// threshold, sinks that received an alert get a resolve. A sink that fails
// is logged and tried again at the next check.
//
// Alerts carry counts, event types, handler names and normalised error
// messages, never event payloads.
package monitor
