package ec2

import (
	"context"
	"testing"
	"time"

	"zcloud/internal/testenv"
)

func TestSpotInterruptionFromMetadataMock(t *testing.T) {
	// IMDSv2 only (-I): the call must fetch a session token first.
	// The notice appears 2 s after start (-d 2); before that IMDS says 404.
	mock := testenv.StartIMDSMock(t, "spot", "-I", "-d", "4", "-a", "stop")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	n, err := SpotInterruption(ctx, mock.Endpoint)
	t.Logf("first poll after %v: %+v %v", time.Since(start), n, err)
	if err != nil || n != nil {
		t.Fatalf("before the notice: %+v %v, want nil, nil", n, err)
	}
	for n == nil {
		if time.Since(start) > 15*time.Second {
			t.Fatal("no notice after 15 s")
		}
		time.Sleep(200 * time.Millisecond)
		if n, err = SpotInterruption(ctx, mock.Endpoint); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("notice after %v: %+v", time.Since(start), n)
	if n.Action != "stop" || n.Time.IsZero() {
		t.Fatalf("notice %+v", n)
	}
}

func TestWaitSpotInterruption(t *testing.T) {
	mock := testenv.StartIMDSMock(t, "spot", "-I", "-d", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := WaitSpotInterruption(ctx, mock.Endpoint, 100*time.Millisecond)
	if err != nil || n.Action != "terminate" {
		t.Fatalf("%+v %v", n, err)
	}
	// Nothing listening: gives up with ctx, naming the last error.
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if _, err := WaitSpotInterruption(short, "http://127.0.0.1:1", 50*time.Millisecond); err == nil {
		t.Fatal("no IMDS, no error")
	}
}

func TestParseSpotNotice(t *testing.T) {
	n, err := ParseSpotNotice([]byte(`{"action": "terminate", "time": "2026-03-02T03:15:00Z"}`))
	if err != nil || n.Action != "terminate" || !n.Time.Equal(time.Date(2026, 3, 2, 3, 15, 0, 0, time.UTC)) {
		t.Fatalf("%+v %v", n, err)
	}
	if _, err := ParseSpotNotice([]byte(`<html>404</html>`)); err == nil {
		t.Fatal("html accepted")
	}
	if _, err := ParseSpotNotice([]byte(`{}`)); err == nil {
		t.Fatal("empty notice accepted")
	}
}
