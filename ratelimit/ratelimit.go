// Package ratelimit is zcloud's one bandwidth limiter: a token bucket in
// bytes, used by the replication stream, the parallel transfer and the
// object stores.
package ratelimit

import (
	"context"
	"io"
	"sync"
	"time"
)

// Bucket lets bytesPerSec bytes pass per second on average, with bursts of
// up to Burst bytes. Tokens may go negative (a whole read is taken at
// once); the taker then waits until the debt is repaid, so the long-run
// rate is exact. A nil *Bucket limits nothing. It is safe for concurrent
// use: goroutines sharing one Bucket share its budget.
type Bucket struct {
	mu     sync.Mutex
	rate   float64 // bytes per second
	burst  float64
	tokens float64
	last   time.Time
}

// New returns a bucket that starts full, or nil (no limit) when
// bytesPerSec <= 0. burst <= 0 means a tenth of a second's worth.
func New(bytesPerSec, burst int64) *Bucket {
	if bytesPerSec <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(bytesPerSec/10, 1)
	}
	return &Bucket{rate: float64(bytesPerSec), burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

// Burst is the most bytes that pass without waiting (0 for no limit).
func (b *Bucket) Burst() int {
	if b == nil {
		return 0
	}
	return int(b.burst)
}

// Wait takes n bytes and blocks until they may pass or ctx ends.
func (b *Bucket) Wait(ctx context.Context, n int) error {
	if b == nil || n <= 0 {
		return nil
	}
	d := b.take(time.Now(), n)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// take refills the bucket up to now, takes n bytes and says how long the
// taker must wait for them.
func (b *Bucket) take(now time.Time, n int) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// Reader limits reads from r through b: each read asks for at most a
// burst, so the pacing stays smooth. A nil b returns r itself.
func Reader(ctx context.Context, r io.Reader, b *Bucket) io.Reader {
	if b == nil {
		return r
	}
	return &reader{ctx: ctx, r: r, b: b}
}

type reader struct {
	ctx context.Context
	r   io.Reader
	b   *Bucket
}

func (r *reader) Read(p []byte) (int, error) {
	if len(p) > r.b.Burst() {
		p = p[:r.b.Burst()]
	}
	n, err := r.r.Read(p)
	if werr := r.b.Wait(r.ctx, n); werr != nil && err == nil {
		err = werr
	}
	return n, err
}
