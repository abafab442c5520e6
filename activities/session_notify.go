package activities

import (
	"context"
	"fmt"

	"zcloud/cloud/awsclient"
	"zcloud/cloud/notify"
	"zcloud/contract"
)

// Notify sends an event to the configured notifiers (notify: sns and/or
// webhook); with none configured it does nothing.
func (a *Activities) Notify(ctx context.Context, e contract.NotifyEvent) error {
	var m notify.Multi
	if s := a.Config.Notify.SNS; s != nil {
		api, err := awsclient.SNS(ctx, awsclient.Config{Region: s.Region, Endpoint: s.Endpoint})
		if err != nil {
			return permanent(contract.ErrTypeConfig, fmt.Errorf("notify.sns: %w", err))
		}
		m = append(m, notify.SNS{API: api, TopicARN: s.TopicARN})
	}
	if w := a.Config.Notify.Webhook; w != nil {
		m = append(m, notify.Webhook{URL: w.URL, Headers: w.Headers})
	}
	if len(m) == 0 {
		return nil
	}
	return m.Notify(ctx, notify.Event{Subject: e.Subject, Body: e.Body, Severity: notify.Severity(e.Severity), Time: e.Time, Fields: e.Fields})
}
