// Package metrics holds zcloud's Prometheus metrics and serves them.
package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Metrics are the counters activities update. A nil *Metrics is valid and
// records nothing, so tests and tools need not set one up.
type Metrics struct {
	Registry        *prometheus.Registry
	BytesSent       *prometheus.CounterVec   // by target, transport
	Sends           *prometheus.CounterVec   // by target, result (ok, error)
	SendSeconds     *prometheus.HistogramVec // by target
	SnapshotsPruned *prometheus.CounterVec   // by dataset
	// DeepDrillPassed is when the newest passed deep drill (a chain
	// received from the archive and checked) of each dataset ended.
	DeepDrillPassed *prometheus.GaugeVec // by dataset

	// Every workflow run, by kind, dataset and tier (RunDone).
	Runs       *prometheus.CounterVec   // + outcome (ok, error, cancelled)
	RunBytes   *prometheus.CounterVec   // bytes moved by successful runs
	RunSeconds *prometheus.HistogramVec // duration of successful runs
	jobs       *jobs                    // last success, lag, last run failed

	sdk *sdkCollector // the Temporal SDK's own metrics (SDKHandler)
}

// New registers zcloud's metrics plus the Go and process collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		BytesSent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zcloud_send_bytes_total",
			Help: "Bytes of zfs send streams delivered to targets."}, []string{"target", "transport"}),
		Sends: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zcloud_sends_total",
			Help: "Send attempts by result."}, []string{"target", "result"}),
		SendSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "zcloud_send_seconds",
			Help: "Duration of send attempts.", Buckets: prometheus.ExponentialBuckets(1, 4, 10)}, []string{"target"}),
		SnapshotsPruned: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zcloud_snapshots_destroyed_total",
			Help: "Snapshots destroyed by retention."}, []string{"dataset"}),
		DeepDrillPassed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "zcloud_archive_deep_drill_last_success_timestamp_seconds",
			Help: "When the newest passed deep drill of the dataset's archive ended (Unix seconds): its chain was downloaded, decrypted, received into a scratch dataset and checked."}, []string{"dataset"}),
		Runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zcloud_runs_total",
			Help: "Finished workflow runs by kind, dataset, tier and outcome."}, []string{"kind", "dataset", "tier", "outcome"}),
		RunBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zcloud_run_bytes_total",
			Help: "Bytes moved (sent, archived, restored, re-read) by successful workflow runs."}, jobLabels),
		RunSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "zcloud_run_seconds",
			Help: "Duration of successful workflow runs.", Buckets: prometheus.ExponentialBuckets(1, 4, 10)}, jobLabels),
		jobs: newJobs(),
		sdk:  newSDKCollector(),
	}
	r.MustRegister(m.BytesSent, m.Sends, m.SendSeconds, m.SnapshotsPruned, m.DeepDrillPassed, m.Runs, m.RunBytes, m.RunSeconds, m.jobs, m.sdk,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// SendDone records one send attempt.
func (m *Metrics) SendDone(target, transport string, bytes int64, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.BytesSent.WithLabelValues(target, transport).Add(float64(bytes))
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.Sends.WithLabelValues(target, result).Inc()
	m.SendSeconds.WithLabelValues(target).Observe(d.Seconds())
}

// SnapshotDestroyed counts one snapshot destroyed by retention.
func (m *Metrics) SnapshotDestroyed(dataset string) {
	if m == nil {
		return
	}
	m.SnapshotsPruned.WithLabelValues(dataset).Inc()
}

// DeepDrillDone records a passed deep drill of dataset that ended at end;
// an older one than already recorded changes nothing.
func (m *Metrics) DeepDrillDone(dataset string, end time.Time) {
	if m == nil {
		return
	}
	g := m.DeepDrillPassed.WithLabelValues(dataset)
	ts := float64(end.UnixMilli()) / 1000
	var cur dto.Metric
	if g.Write(&cur) == nil && cur.GetGauge().GetValue() >= ts {
		return
	}
	g.Set(ts)
}

// Serve exposes /metrics on addr until ctx ends.
func (m *Metrics) Serve(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
