package tclient

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"zcloud/config"
	"zcloud/internal/testenv"
)

// signalLogger returns a logger that sends every entry's message to ch
// (dropped when nobody reads), so a test waits on what the code logs.
func signalLogger(ch chan<- string) *zap.Logger {
	return zap.NewNop().WithOptions(zap.WrapCore(func(zapcore.Core) zapcore.Core {
		return zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(nopWriter{}), zap.DebugLevel)
	}), zap.Hooks(func(e zapcore.Entry) error {
		select {
		case ch <- e.Message:
		default:
		}
		return nil
	}))
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// A worker started before Temporal waits for it (logging why) and connects
// once it is up, instead of exiting at once.
func TestDialWaitWaitsForTemporal(t *testing.T) {
	port := testenv.FreePort()
	cfg := config.Temporal{Address: fmt.Sprintf("127.0.0.1:%d", port), Namespace: "default"}
	logs := make(chan string, 1)
	type result struct {
		err error
		ok  bool
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	go func() {
		cl, err := DialWait(ctx, cfg, signalLogger(logs), Backoff{First: 10 * time.Millisecond, Max: 200 * time.Millisecond})
		if err != nil {
			done <- result{err: err}
			return
		}
		defer cl.Close()
		_, err = cl.CheckHealth(ctx, nil)
		done <- result{err: err, ok: err == nil}
	}()
	// The first attempt fails: nothing listens yet.
	for waiting := false; !waiting; {
		select {
		case msg := <-logs:
			waiting = strings.HasPrefix(msg, "waiting for Temporal")
		case r := <-done:
			t.Fatalf("DialWait returned before Temporal ran: %+v", r)
		}
	}
	srv, err := testenv.StartTemporalOn(filepath.Join(t.TempDir(), "temporal.log"), port, false)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	if r := <-done; !r.ok {
		t.Fatalf("after Temporal started: %v", r.err)
	}
}

// Waiting cannot fix a TLS file that is missing: the error comes at once.
func TestDialWaitFailsAtOnceOnBadTLS(t *testing.T) {
	cfg := config.Temporal{Address: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort()), Namespace: "default",
		TLS: config.TLS{CAFile: filepath.Join(t.TempDir(), "missing.pem")}}
	logs := make(chan string, 10)
	_, err := DialWait(context.Background(), cfg, signalLogger(logs), DefaultBackoff)
	if err == nil || !strings.Contains(err.Error(), "temporal.tls.ca_file") {
		t.Fatalf("err = %v", err)
	}
	close(logs)
	for msg := range logs {
		if strings.HasPrefix(msg, "waiting for Temporal") {
			t.Fatalf("waited for a TLS error: %s", msg)
		}
	}
}

// A stopped service (ctx done) stops waiting and says what it waited for.
func TestDialWaitEndsWithContext(t *testing.T) {
	cfg := config.Temporal{Address: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort()), Namespace: "default"}
	logs := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for msg := range logs {
			if strings.HasPrefix(msg, "waiting for Temporal") {
				cancel()
				return
			}
		}
	}()
	_, err := DialWait(ctx, cfg, signalLogger(logs), Backoff{First: time.Hour, Max: time.Hour})
	if err == nil || !strings.Contains(err.Error(), "context canceled") || !strings.Contains(err.Error(), cfg.Address) {
		t.Fatalf("err = %v", err)
	}
}
