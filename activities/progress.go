package activities

import (
	"context"
	"io"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/activity"

	"zcloud/contract"
	"zcloud/progress"
	"zcloud/ratelimit"
)

// counter is a long activity's byte count: heartbeats read it, and each
// addition passes the activity's point of the test-only gate (a nil pass,
// as in production, costs nothing).
type counter struct {
	atomic.Int64
	pass func(total int64) error
}

// newCounter counts bytes of the activity for ctx at the named gate point
// ("send", "upload", "restore", "verify").
func (a *Activities) newCounter(ctx context.Context, point string) *counter {
	c := &counter{}
	if g := a.Gate; g != nil {
		c.pass = func(total int64) error { return g.Pass(ctx, point, total) }
	}
	return c
}

// add counts k bytes; an error (only from a held gate whose context ended)
// fails the stream.
func (c *counter) add(k int) error {
	total := c.Add(int64(k))
	if c.pass == nil {
		return nil
	}
	return c.pass(total)
}

// meter counts bytes flowing through a stream and optionally limits their
// rate (package ratelimit).
type meter struct {
	n     *counter
	limit *ratelimit.Bucket // nil: none
	start time.Time
}

// newMeter counts into n and lets at most limit bytes/s through (0: no
// limit).
func newMeter(n *counter, limit int64) *meter {
	return &meter{n: n, limit: ratelimit.New(limit, 0), start: time.Now()}
}

// reader wraps r so reads are counted (and throttled). A throttled read
// waits at most a tenth of a second's worth, so it needs no context.
func (m *meter) reader(r io.Reader) io.Reader {
	return &meteredReader{r: ratelimit.Reader(context.Background(), r, m.limit), m: m}
}

type meteredReader struct {
	r io.Reader
	m *meter
}

func (mr *meteredReader) Read(p []byte) (int, error) {
	n, err := mr.r.Read(p)
	if gerr := mr.m.n.add(n); gerr != nil && err == nil {
		err = gerr
	}
	return n, err
}

func (m *meter) progress(phase string, total int64) contract.Progress {
	return progressSince(m.start, phase, "", m.n.Load(), total)
}

// progressSince is the heartbeat payload of n of total bytes counted since
// start.
func progressSince(start time.Time, phase, detail string, n, total int64) contract.Progress {
	rate := 0.0
	if s := time.Since(start).Seconds(); s > 0 {
		rate = float64(n) / s
	}
	return contract.Progress{Phase: phase, Bytes: n, Total: total, BytesPerSec: rate, Detail: detail}
}

// heartbeatBytes reports a byte counter while a long activity runs: on the
// worker's live board (package progress: what the CLI shows, read fresh
// from n) and in a heartbeat every interval (liveness and resume details,
// carrying the live URL; the SDK passes one on to the server at most every
// 0.8 x the heartbeat timeout). stop ends both, with a last heartbeat of
// the final count.
func (a *Activities) heartbeatBytes(ctx context.Context, phase, detail string, total int64, n *atomic.Int64, every time.Duration) (stop func()) {
	live, untrack := "", func() {}
	if a.Live != nil && activity.IsActivity(ctx) {
		info := activity.GetInfo(ctx)
		live, untrack = a.Live.Track(progress.Entry{Key: progress.Key{Workflow: info.WorkflowExecution.ID, Activity: info.ActivityID},
			Attempt: info.Attempt, Phase: phase, Detail: detail, Total: total, Bytes: n})
	}
	start := time.Now()
	current := func() contract.Progress {
		p := progressSince(start, phase, detail, n.Load(), total)
		p.Live = live
		return p
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
				activity.RecordHeartbeat(ctx, current())
			}
		}
	}()
	activity.RecordHeartbeat(ctx, current())
	return func() { close(done); untrack(); activity.RecordHeartbeat(ctx, current()) }
}
