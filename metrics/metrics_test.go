package metrics

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestServeExposesSendCounters(t *testing.T) {
	m := New()
	m.SendDone("backup", "parallel", 1234, time.Second, nil)
	m.SendDone("backup", "parallel", 0, time.Second, errors.New("x"))
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Serve(ctx, addr)
	var body string
	for i := 0; i < 50; i++ {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{
		`zcloud_send_bytes_total{target="backup",transport="parallel"} 1234`,
		`zcloud_sends_total{result="error",target="backup"} 1`,
		`zcloud_sends_total{result="ok",target="backup"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %s in:\n%s", want, body)
		}
	}
	var nilM *Metrics
	nilM.SendDone("x", "y", 1, 0, nil) // must not panic
}
