package metrics

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// SDKHandler is the Temporal SDK's metrics handler (client.Options.
// MetricsHandler): the SDK's own metrics (requests, polls, task latencies,
// workflow and activity outcomes, sticky cache) are served on the same
// /metrics, counters with the suffix _total and timers as histograms in
// seconds with _seconds. A nil *Metrics gives the SDK's no-op handler.
func (m *Metrics) SDKHandler() client.MetricsHandler {
	if m == nil {
		return client.MetricsNopHandler
	}
	return sdkHandler{c: m.sdk}
}

// The SDK tags its metrics with varying label sets under one name, which
// client_golang's vectors refuse; this unchecked collector keeps each
// series (name and labels) as it comes and reports them as const metrics.
type sdkCollector struct {
	mu     sync.Mutex
	series map[string]*sdkSeries
}

type sdkKind int

const (
	sdkCounter sdkKind = iota
	sdkGauge
	sdkTimer
)

// sdkBuckets (seconds) span a poll's milliseconds to a long poll's minute.
var sdkBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120}

type sdkSeries struct {
	desc   *prometheus.Desc
	kind   sdkKind
	values []string
	value  float64  // counter, gauge
	counts []uint64 // timer: per bucket (not cumulative)
	sum    float64
	count  uint64
}

func newSDKCollector() *sdkCollector { return &sdkCollector{series: map[string]*sdkSeries{}} }

func (c *sdkCollector) Describe(chan<- *prometheus.Desc) {} // unchecked: label sets vary

func (c *sdkCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.series {
		switch s.kind {
		case sdkCounter:
			ch <- prometheus.MustNewConstMetric(s.desc, prometheus.CounterValue, s.value, s.values...)
		case sdkGauge:
			ch <- prometheus.MustNewConstMetric(s.desc, prometheus.GaugeValue, s.value, s.values...)
		case sdkTimer:
			cum := map[float64]uint64{}
			var n uint64
			for i, b := range sdkBuckets {
				n += s.counts[i]
				cum[b] = n
			}
			ch <- prometheus.MustNewConstHistogram(s.desc, s.count, s.sum, cum, s.values...)
		}
	}
}

// update finds (or makes) the series and applies f to it under the lock.
func (c *sdkCollector) update(kind sdkKind, name string, tags map[string]string, f func(*sdkSeries)) {
	name = promName(name)
	switch kind {
	case sdkCounter:
		name += "_total"
	case sdkTimer:
		name += "_seconds"
	}
	keys := slices.Sorted(maps.Keys(tags))
	var id strings.Builder
	id.WriteString(name)
	labels := make([]string, len(keys))
	values := make([]string, len(keys))
	for i, k := range keys {
		labels[i], values[i] = promName(k), tags[k]
		id.WriteString("\xff" + k + "=" + tags[k])
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.series[id.String()]
	if s == nil {
		s = &sdkSeries{kind: kind, values: values,
			desc: prometheus.NewDesc(name, "Temporal SDK metric "+name+".", labels, nil)}
		if kind == sdkTimer {
			s.counts = make([]uint64, len(sdkBuckets))
		}
		c.series[id.String()] = s
	}
	f(s)
}

// promName keeps [a-zA-Z0-9_] and makes anything else an underscore.
func promName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

type sdkHandler struct {
	c    *sdkCollector
	tags map[string]string
}

func (h sdkHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := maps.Clone(h.tags)
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, tags)
	return sdkHandler{c: h.c, tags: merged}
}

func (h sdkHandler) Counter(name string) client.MetricsCounter {
	return counterFunc(func(d int64) {
		h.c.update(sdkCounter, name, h.tags, func(s *sdkSeries) { s.value += float64(d) })
	})
}

func (h sdkHandler) Gauge(name string) client.MetricsGauge {
	return gaugeFunc(func(v float64) {
		h.c.update(sdkGauge, name, h.tags, func(s *sdkSeries) { s.value = v })
	})
}

func (h sdkHandler) Timer(name string) client.MetricsTimer {
	return timerFunc(func(d time.Duration) {
		h.c.update(sdkTimer, name, h.tags, func(s *sdkSeries) {
			sec := d.Seconds()
			if i, _ := slices.BinarySearch(sdkBuckets, sec); i < len(sdkBuckets) {
				s.counts[i]++
			}
			s.sum += sec
			s.count++
		})
	})
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }
