package activities

import (
	"context"
	"io"
	"sync"
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
	return heartbeatEvery(ctx, every, func() contract.Progress {
		p := progressSince(start, phase, detail, n.Load(), total)
		p.Live = live
		return p
	}, untrack)
}

// heartbeatEvery is the activities' one heartbeat loop: it records
// current() as the activity's heartbeat now and every interval until stop
// (or ctx ends), so the server notices a dead worker within the heartbeat
// timeout and the retry runs elsewhere. stop runs then (if set) and
// records a last heartbeat; calling it again does nothing.
func heartbeatEvery(ctx context.Context, every time.Duration, current func() contract.Progress, then func()) (stop func()) {
	record := func() {
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, current())
		}
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
				record()
			}
		}
	}()
	record()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			if then != nil {
				then()
			}
			record()
		})
	}
}

// beat is a step's heartbeat whose detail (and bytes) the step updates as
// it goes: the pool steps' progress ("waiting for /dev/...", "43.5% done").
type beat struct {
	mu   sync.Mutex
	p    contract.Progress
	stop func()
}

// startBeat heartbeats phase every quarter of the activity's heartbeat
// timeout (at most every 10 s) until stop.
func startBeat(ctx context.Context, phase string) *beat {
	b := &beat{p: contract.Progress{Phase: phase}}
	every := 5 * time.Second
	if activity.IsActivity(ctx) {
		if hb := activity.GetInfo(ctx).HeartbeatTimeout; hb > 0 {
			every = min(max(hb/4, 100*time.Millisecond), 10*time.Second)
		}
	}
	b.stop = heartbeatEvery(ctx, every, func() contract.Progress {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.p
	}, nil)
	return b
}

func (b *beat) set(detail string) {
	b.mu.Lock()
	b.p.Detail = detail
	b.mu.Unlock()
}

func (b *beat) setBytes(n, total int64) {
	b.mu.Lock()
	b.p.Bytes, b.p.Total = n, total
	b.mu.Unlock()
}
