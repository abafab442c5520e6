package metrics

import (
	"context"
	"errors"
	"fmt"
	dto "github.com/prometheus/client_model/go"
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

// Each run lands under its job's labels: outcome counts, the last success,
// the age of its copy (from the run's start) and whether the newest run
// failed; the SDK's metrics, whose label sets vary under one name, are
// served beside them.
func TestRunsAndSDKMetricsAreServed(t *testing.T) {
	m := New()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	m.jobs.now = func() time.Time { return t0.Add(2 * time.Hour) }
	m.RunDone(Run{Kind: "replicate", Datasets: []string{"tank/a"}, Tier: "b", Outcome: "ok", Started: t0, Ended: t0.Add(time.Minute), Bytes: 100})
	m.RunDone(Run{Kind: "replicate", Datasets: []string{"tank/a"}, Tier: "b", Outcome: "error", Started: t0.Add(time.Hour), Ended: t0.Add(time.Hour)})
	m.RunDone(Run{Kind: "session", Datasets: []string{"tank/a", "tank/b"}, Tier: "nightly", Outcome: "ok", Started: t0, Ended: t0, Bytes: 7})
	h := m.SDKHandler()
	h.WithTags(map[string]string{"namespace": "default"}).Counter("temporal_request").Inc(2)
	h.WithTags(map[string]string{"namespace": "default", "operation": "Poll"}).Counter("temporal_request").Inc(1)
	h.Timer("temporal_workflow_endtoend_latency").Record(300 * time.Millisecond)
	var sb strings.Builder
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			var labels []string
			for _, l := range mt.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := mt.GetGauge().GetValue() + mt.GetCounter().GetValue() + float64(mt.GetHistogram().GetSampleCount())
			fmt.Fprintf(&sb, "%s{%s} %g\n", f.GetName(), strings.Join(labels, ","), v)
		}
	}
	body := sb.String()
	for _, want := range []string{
		"zcloud_runs_total{dataset=tank/a,kind=replicate,outcome=ok,tier=b} 1",
		"zcloud_runs_total{dataset=tank/a,kind=replicate,outcome=error,tier=b} 1",
		"zcloud_run_bytes_total{dataset=tank/a,kind=replicate,tier=b} 100",
		"zcloud_last_success_timestamp_seconds{dataset=tank/a,kind=replicate,tier=b} 1.79663766e+09",
		"zcloud_lag_seconds{dataset=tank/a,kind=replicate,tier=b} 7200",
		"zcloud_last_run_failed{dataset=tank/a,kind=replicate,tier=b} 1",
		"zcloud_runs_total{dataset=tank/b,kind=session,outcome=ok,tier=nightly} 1",
		"zcloud_last_run_failed{dataset=tank/b,kind=session,tier=nightly} 0",
		"temporal_request_total{namespace=default} 2",
		"temporal_request_total{namespace=default,operation=Poll} 1",
		"temporal_workflow_endtoend_latency_seconds{} 1",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("missing %s in:\n%s", want, body)
		}
	}
	// A session's bytes are not split among its datasets (its replicate
	// children count them per dataset).
	if strings.Contains(body, "zcloud_run_bytes_total{dataset=tank/b") {
		t.Errorf("session bytes attributed to one dataset:\n%s", body)
	}
}

// The deep-drill gauge keeps the newest passed drill: an older report
// (read back from the store after a newer drill was recorded) does not
// move it back.
func TestDeepDrillDoneKeepsTheNewest(t *testing.T) {
	m := New()
	t1 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	m.DeepDrillDone("tank/data", t1)
	m.DeepDrillDone("tank/data", t1.Add(-24*time.Hour))
	if got := gaugeValue(t, m, "tank/data"); got != float64(t1.Unix()) {
		t.Fatalf("gauge %v, want %v", got, t1.Unix())
	}
	m.DeepDrillDone("tank/data", t1.Add(time.Hour))
	if got := gaugeValue(t, m, "tank/data"); got != float64(t1.Add(time.Hour).Unix()) {
		t.Fatalf("gauge %v after a newer drill", got)
	}
	var nilM *Metrics
	nilM.DeepDrillDone("x", t1) // a worker without metrics
}

func gaugeValue(t *testing.T, m *Metrics, dataset string) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.DeepDrillPassed.WithLabelValues(dataset).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetGauge().GetValue()
}
