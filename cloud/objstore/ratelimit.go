package objstore

import (
	"context"
	"io"
	"sync"
	"time"
)

// WithRateLimit caps the bytes per second flowing through Put and Get,
// shared by all calls (a bandwidth budget for a WAN link). Metadata
// calls are not limited.
func WithRateLimit(s Store, bytesPerSec int64) Store {
	if bytesPerSec <= 0 {
		return s
	}
	return &rateStore{Store: s, l: &limiter{rate: float64(bytesPerSec), burst: float64(max(bytesPerSec/4, 64<<10)), last: time.Now()}}
}

type rateStore struct {
	Store
	l *limiter
}

func (r *rateStore) Put(ctx context.Context, key string, rd io.Reader, size int64, opts PutOptions) (ObjectInfo, error) {
	return r.Store.Put(ctx, key, &limitedReader{ctx: ctx, r: rd, l: r.l}, size, opts)
}

func (r *rateStore) Get(ctx context.Context, key string, rng Range) (io.ReadCloser, error) {
	rc, err := r.Store.Get(ctx, key, rng)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{&limitedReader{ctx: ctx, r: rc, l: r.l}, rc}, nil
}

// limiter is a token bucket in bytes.
type limiter struct {
	mu          sync.Mutex
	rate, burst float64
	tokens      float64
	last        time.Time
}

// take waits until n bytes may pass.
func (l *limiter) take(ctx context.Context, n int) error {
	l.mu.Lock()
	now := time.Now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.tokens -= float64(n)
	wait := time.Duration(-l.tokens / l.rate * float64(time.Second))
	l.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	select {
	case <-time.After(wait):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type limitedReader struct {
	ctx context.Context
	r   io.Reader
	l   *limiter
}

func (r *limitedReader) Read(p []byte) (int, error) {
	if len(p) > int(r.l.burst) {
		p = p[:int(r.l.burst)]
	}
	n, err := r.r.Read(p)
	if n > 0 {
		if werr := r.l.take(r.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}
