package activities

import (
	"context"
	"io"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/activity"
)

// meter counts bytes flowing through a stream, optionally limits their rate,
// and heartbeats progress every interval while the stream runs.
type meter struct {
	n     atomic.Int64
	limit int64 // bytes/s, 0: none
	start time.Time
}

func newMeter(limit int64) *meter { return &meter{limit: limit, start: time.Now()} }

// reader wraps r so reads are counted (and throttled).
func (m *meter) reader(r io.Reader) io.Reader { return &meteredReader{r: r, m: m} }

type meteredReader struct {
	r io.Reader
	m *meter
}

func (mr *meteredReader) Read(p []byte) (int, error) {
	if mr.m.limit > 0 && len(p) > int(mr.m.limit/10)+1 {
		p = p[:mr.m.limit/10+1] // small reads keep the pacing smooth
	}
	n, err := mr.r.Read(p)
	total := mr.m.n.Add(int64(n))
	if mr.m.limit > 0 {
		due := time.Duration(float64(total) / float64(mr.m.limit) * float64(time.Second))
		if ahead := due - time.Since(mr.m.start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	return n, err
}

func (m *meter) progress(phase string, total int64) Progress {
	n := m.n.Load()
	secs := time.Since(m.start).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(n) / secs
	}
	return Progress{Phase: phase, Bytes: n, Total: total, BytesPerSec: rate}
}

// heartbeat records progress every interval until ctx ends; call the
// returned stop function when the work is done.
func (m *meter) heartbeat(ctx context.Context, phase string, total int64, every time.Duration) (stop func()) {
	return heartbeatBytes(ctx, phase, "", total, &m.n, every)
}

// heartbeatBytes heartbeats a byte counter every interval until stop is
// called (and once more then, with the final count).
func heartbeatBytes(ctx context.Context, phase, detail string, total int64, n *atomic.Int64, every time.Duration) (stop func()) {
	start := time.Now()
	progress := func() Progress {
		b := n.Load()
		rate := 0.0
		if s := time.Since(start).Seconds(); s > 0 {
			rate = float64(b) / s
		}
		return Progress{Phase: phase, Bytes: b, Total: total, BytesPerSec: rate, Detail: detail}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx, progress())
			}
		}
	}()
	activity.RecordHeartbeat(ctx, progress())
	return func() { close(done); activity.RecordHeartbeat(ctx, progress()) }
}
