// Package notify tells operators about failures and finished runs: through
// an SNS topic (mail, SMS, chat via subscriptions) or a webhook.
package notify

import (
	"context"
	"errors"
	"time"
)

// Severity ranks an event.
type Severity string

// Severities.
const (
	Info    Severity = "info"
	Warning Severity = "warning"
	Error   Severity = "error"
)

// Event is one notification.
type Event struct {
	Subject  string   `json:"subject"`
	Body     string   `json:"body"`
	Severity Severity `json:"severity"`
	// Time is when it happened; zero means now (set by the notifier).
	Time time.Time `json:"time,omitzero"`
	// Fields are extra key/values (workflow id, pool, dataset).
	Fields map[string]string `json:"fields,omitempty"`
}

// Notifier delivers events.
type Notifier interface {
	Notify(ctx context.Context, e Event) error
}

// Multi sends to every notifier; one failing does not stop the others.
type Multi []Notifier

// Notify implements Notifier.
func (m Multi) Notify(ctx context.Context, e Event) error {
	var errs []error
	for _, n := range m {
		if err := n.Notify(ctx, e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (e Event) withDefaults() Event {
	if e.Severity == "" {
		e.Severity = Info
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	return e
}
