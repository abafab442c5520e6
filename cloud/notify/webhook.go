package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"time"
)

// Webhook POSTs events as JSON. The body carries "text" too, so Slack and
// Mattermost incoming webhooks show it as is.
type Webhook struct {
	URL     string
	Headers map[string]string // e.g. Authorization
	// Timeout per attempt (default 10 s). Retries after the first attempt
	// (default 3, negative for none) on network errors, 429 and 5xx, waiting
	// Backoff (default 1 s), doubling each time.
	Timeout time.Duration
	Retries int
	Backoff time.Duration
	Client  *http.Client
}

// webhookBody is the JSON document sent.
type webhookBody struct {
	Text     string            `json:"text"`
	Subject  string            `json:"subject"`
	Body     string            `json:"body"`
	Severity Severity          `json:"severity"`
	Time     time.Time         `json:"time"`
	Fields   map[string]string `json:"fields,omitempty"`
}

// Notify implements Notifier.
func (w Webhook) Notify(ctx context.Context, e Event) error {
	e = e.withDefaults()
	body, err := json.Marshal(webhookBody{
		Text:    fmt.Sprintf("[zcloud %s] %s\n%s", e.Severity, e.Subject, e.Body),
		Subject: e.Subject, Body: e.Body, Severity: e.Severity, Time: e.Time, Fields: e.Fields,
	})
	if err != nil {
		return err
	}
	timeout, retries, backoff := w.Timeout, w.Retries, w.Backoff
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if retries == 0 {
		retries = 3
	}
	if backoff <= 0 {
		backoff = time.Second
	}
	client := w.Client
	if client == nil {
		client = http.DefaultClient
	}
	var last error
	for attempt := 0; attempt <= max(retries, 0); attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("notify: webhook: %w (last: %v)", ctx.Err(), last)
			case <-time.After(backoff << (attempt - 1)):
			}
		}
		retry, err := w.post(ctx, client, timeout, body)
		if err == nil {
			return nil
		}
		last = err
		if !retry {
			break
		}
	}
	return last
}

func (w Webhook) post(ctx context.Context, client *http.Client, timeout time.Duration, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("notify: webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "zcloud-notify")
	for k, v := range w.Headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return true, fmt.Errorf("notify: webhook: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	err = fmt.Errorf("notify: webhook: %s: %s", resp.Status, bytes.TrimSpace(msg))
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500, err
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
