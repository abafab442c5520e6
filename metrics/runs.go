package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Run is how one workflow run ended, as the worker's interceptor reports it
// (workflows.RunOutcome, flattened so this package needs no workflow code).
type Run struct {
	Kind     string   // replicate, session, archive, restore, drill, scrub, grow...
	Datasets []string // one series per dataset; none gives dataset=""
	Tier     string   // where the copy lives: a target name, "archive", "pool/NAME", or "source"
	Outcome  string   // ok, error, cancelled
	Started  time.Time
	Ended    time.Time
	Bytes    int64
}

// jobKey is one job: a kind of run of one dataset on one tier.
type jobKey struct{ kind, dataset, tier string }

// jobState is what the newest runs of a job said.
type jobState struct {
	lastSuccess      time.Time // end of the newest successful run
	lastSuccessStart time.Time // its start: when its snapshot was taken
	lastFailed       bool      // the newest finished run failed
}

// jobs serves the per-job gauges; the lag is computed at each scrape.
type jobs struct {
	mu    sync.Mutex
	state map[jobKey]*jobState
	now   func() time.Time

	lastSuccess, lag, lastFailed *prometheus.Desc
}

var jobLabels = []string{"kind", "dataset", "tier"}

func newJobs() *jobs {
	return &jobs{state: map[jobKey]*jobState{}, now: time.Now,
		lastSuccess: prometheus.NewDesc("zcloud_last_success_timestamp_seconds",
			"When the newest successful run of the job ended (Unix seconds).", jobLabels, nil),
		lag: prometheus.NewDesc("zcloud_lag_seconds",
			"Age of the job's newest copy: seconds since the newest successful run started (when its snapshot was taken).", jobLabels, nil),
		lastFailed: prometheus.NewDesc("zcloud_last_run_failed",
			"1 when the job's newest finished run failed, 0 when it succeeded.", jobLabels, nil),
	}
}

func (j *jobs) Describe(ch chan<- *prometheus.Desc) {
	ch <- j.lastSuccess
	ch <- j.lag
	ch <- j.lastFailed
}

func (j *jobs) Collect(ch chan<- prometheus.Metric) {
	j.mu.Lock()
	defer j.mu.Unlock()
	now := j.now()
	for k, s := range j.state {
		failed := 0.0
		if s.lastFailed {
			failed = 1
		}
		ch <- prometheus.MustNewConstMetric(j.lastFailed, prometheus.GaugeValue, failed, k.kind, k.dataset, k.tier)
		if s.lastSuccess.IsZero() {
			continue
		}
		ch <- prometheus.MustNewConstMetric(j.lastSuccess, prometheus.GaugeValue, float64(s.lastSuccess.UnixMilli())/1000, k.kind, k.dataset, k.tier)
		ch <- prometheus.MustNewConstMetric(j.lag, prometheus.GaugeValue, now.Sub(s.lastSuccessStart).Seconds(), k.kind, k.dataset, k.tier)
	}
}

func (j *jobs) record(k jobKey, r Run) {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.state[k]
	if s == nil {
		s = &jobState{}
		j.state[k] = s
	}
	switch r.Outcome {
	case "ok":
		s.lastFailed = false
		if r.Ended.After(s.lastSuccess) {
			s.lastSuccess, s.lastSuccessStart = r.Ended, r.Started
		}
	case "error":
		s.lastFailed = true
	}
}

// RunDone records one finished run of a zcloud workflow.
func (m *Metrics) RunDone(r Run) {
	if m == nil {
		return
	}
	for _, k := range r.jobs() {
		m.Runs.WithLabelValues(k.kind, k.dataset, k.tier, r.Outcome).Inc()
		if r.Bytes > 0 && len(r.Datasets) <= 1 {
			m.RunBytes.WithLabelValues(k.kind, k.dataset, k.tier).Add(float64(r.Bytes))
		}
		if r.Outcome == "ok" {
			m.RunSeconds.WithLabelValues(k.kind, k.dataset, k.tier).Observe(r.Ended.Sub(r.Started).Seconds())
		}
		m.jobs.record(k, r)
	}
}

// Seed records a run a previous worker finished (read back from Temporal at
// start) into the per-job gauges only: the counters count this worker's
// runs. Seed runs oldest first.
func (m *Metrics) Seed(r Run) {
	if m == nil {
		return
	}
	for _, k := range r.jobs() {
		m.jobs.record(k, r)
	}
}

// jobs are the series a run counts under: one per dataset (none: dataset "").
func (r Run) jobs() []jobKey {
	if len(r.Datasets) == 0 {
		return []jobKey{{r.Kind, "", r.Tier}}
	}
	var out []jobKey
	for _, d := range r.Datasets {
		out = append(out, jobKey{r.Kind, d, r.Tier})
	}
	return out
}
