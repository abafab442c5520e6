package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"zcloud/cloud/awsclient"
	"zcloud/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// collector is an HTTP endpoint that keeps what it is sent.
type collector struct {
	mu     sync.Mutex
	bodies [][]byte
	got    chan struct{}
}

func newCollector(t *testing.T) (*collector, *httptest.Server) {
	c := &collector{got: make(chan struct{}, 16)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.bodies = append(c.bodies, b)
		c.mu.Unlock()
		c.got <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return c, srv
}

func (c *collector) wait(t *testing.T) []byte {
	t.Helper()
	select {
	case <-c.got:
	case <-time.After(20 * time.Second):
		t.Fatal("nothing delivered")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bodies[len(c.bodies)-1]
}

func TestSNSDeliversThroughMoto(t *testing.T) {
	m := testenv.SharedMoto(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, err := awsclient.SNS(ctx, awsclient.Config{Region: m.Region, Endpoint: m.Endpoint, AccessKeyID: "testing", SecretAccessKey: "testing"})
	if err != nil {
		t.Fatal(err)
	}
	topic, err := client.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("zcloud-alerts")})
	if err != nil {
		t.Fatal(err)
	}
	// moto delivers to HTTP subscriptions for real, so the test sees what a
	// subscriber would.
	col, srv := newCollector(t)
	if _, err := client.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("http"), Endpoint: aws.String(srv.URL)}); err != nil {
		t.Fatal(err)
	}
	n := SNS{API: client, TopicARN: aws.ToString(topic.TopicArn)}
	long := strings.Repeat("x", 150)
	err = n.Notify(ctx, Event{Subject: "session failed\non " + long, Body: "launch: no capacity", Severity: Error, Fields: map[string]string{"workflow": "session-2026-03-02"}})
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Type, Subject, Message, TopicArn string }
	if err := json.Unmarshal(col.wait(t), &got); err != nil {
		t.Fatal(err)
	}
	if got.Type != "Notification" || got.TopicArn != aws.ToString(topic.TopicArn) ||
		!strings.HasPrefix(got.Subject, "[zcloud error] session failed on xxx") || len(got.Subject) > 99 || strings.Contains(got.Subject, "\n") ||
		!strings.Contains(got.Message, "launch: no capacity") || !strings.Contains(got.Message, "workflow: session-2026-03-02") {
		t.Fatalf("delivered %+v", got)
	}
	bad := SNS{API: client, TopicARN: "arn:aws:sns:us-east-1:123456789012:missing"}
	if err := bad.Notify(ctx, Event{Subject: "x"}); err == nil {
		t.Fatal("publish to a missing topic succeeded")
	}
}

func TestWebhookRetriesServerErrors(t *testing.T) {
	var calls atomic.Int32
	var last []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t0k" || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if calls.Add(1) < 3 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		last, _ = io.ReadAll(r.Body)
	}))
	defer srv.Close()
	w := Webhook{URL: srv.URL, Headers: map[string]string{"Authorization": "Bearer t0k"}, Backoff: 10 * time.Millisecond}
	at := time.Date(2026, 3, 2, 3, 0, 0, 0, time.UTC)
	if err := w.Notify(context.Background(), Event{Subject: "grow done", Body: "pool tank: 2 TiB", Time: at}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 {
		t.Fatalf("%d calls, want 3", calls.Load())
	}
	var got webhookBody
	if err := json.Unmarshal(last, &got); err != nil {
		t.Fatal(err)
	}
	if got.Subject != "grow done" || got.Severity != Info || !got.Time.Equal(at) || got.Text != "[zcloud info] grow done\npool tank: 2 TiB" {
		t.Fatalf("body %+v", got)
	}
}

func TestWebhookGivesUp(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "no such hook", http.StatusNotFound)
	}))
	defer srv.Close()
	err := Webhook{URL: srv.URL, Backoff: time.Millisecond}.Notify(context.Background(), Event{Subject: "x"})
	if err == nil || !strings.Contains(err.Error(), "404") || calls.Load() != 1 {
		t.Fatalf("4xx: %v after %d calls, want one call", err, calls.Load())
	}
	// A hanging endpoint: each attempt times out, then it gives up.
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // lets the server notice the client going away
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)
	start := time.Now()
	err = Webhook{URL: hang.URL, Timeout: 50 * time.Millisecond, Retries: 1, Backoff: time.Millisecond}.Notify(context.Background(), Event{Subject: "x"})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("hanging: %v", err)
	}
}

func TestMultiReachesEveryNotifier(t *testing.T) {
	col, srv := newCollector(t)
	down := Webhook{URL: "http://127.0.0.1:1/", Retries: -1}
	err := Multi{down, Webhook{URL: srv.URL}}.Notify(context.Background(), Event{Subject: "both"})
	if err == nil {
		t.Fatal("the failing notifier's error was lost")
	}
	if !strings.Contains(string(col.wait(t)), `"subject":"both"`) {
		t.Fatal("second notifier not reached")
	}
}
